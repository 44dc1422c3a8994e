COMMENT ON TABLE fm_sitrep_archive IS 'Sitreps removed by the history pruner, kept as JSON so that debugging survives pruning. Bounded: the pruner keeps only the newest entries.';
