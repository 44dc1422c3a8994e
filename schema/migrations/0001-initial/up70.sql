COMMENT ON COLUMN support_bundle.user_comment IS 'Operator-supplied comment, or NULL.';
