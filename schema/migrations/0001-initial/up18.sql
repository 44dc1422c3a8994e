COMMENT ON TABLE fm_sitrep_history IS 'The linear history of sitreps that became current. The row with the highest version names the current sitrep.';
