"""Repository-wide pytest setup: shared plugins are registered here so every test folder sees them."""
