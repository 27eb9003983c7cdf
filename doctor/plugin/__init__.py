"""The plugin face: what a plugin author imports."""
