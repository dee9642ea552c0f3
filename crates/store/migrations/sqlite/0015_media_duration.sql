-- How long an audio or video upload plays (from ffprobe), in milliseconds;
-- NULL for everything else and for files the tools could not read. A
-- video's poster frame is its preview (preview_key, width, height,
-- blurhash), as for images.
ALTER TABLE attachments ADD COLUMN duration_ms INTEGER;
