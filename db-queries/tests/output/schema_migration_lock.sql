SELECT pg_advisory_lock($1) -- binds: [7380660287854572129]
