"""Upload of recordings to S3-compatible storage."""
