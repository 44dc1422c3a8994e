COMMENT ON TABLE fm_sitrep IS 'Immutable situation reports: the desired state (cases, alert requests, support-bundle requests) produced by fault-management analysis.';
