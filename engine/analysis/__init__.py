"""Listening to audio the musician brings: what the models are told about a riff before continuing it."""
