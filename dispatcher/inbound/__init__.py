"""What comes back from channels: webhook intake and the apply step."""
