COMMENT ON TABLE fm_case IS 'Fault-management cases as they stand in one sitrep. A case open across several sitreps has one row per sitrep.';
