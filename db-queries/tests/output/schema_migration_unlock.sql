SELECT pg_advisory_unlock($1) -- binds: [7380660287854572129]
