"""Data protection (UK GDPR): a member's data exported for them, and erasure of a member who left."""
