"""Telling the user's backend: LiveKit-signed webhooks for each recording."""
