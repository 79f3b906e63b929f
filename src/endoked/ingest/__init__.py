"""ingest: validate an archive (manifest or folder layout) into ``exams``/``images`` tables + rejects."""
