COMMENT ON COLUMN fm_sitrep_archive.sitrep IS 'The whole sitrep (metadata, cases, requests) in the JSON form that fm-dev sitrep publish reads.';
