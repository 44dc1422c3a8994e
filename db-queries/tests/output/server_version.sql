SELECT version() -- binds: []
