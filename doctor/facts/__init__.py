"""Pure: raw artifacts in, typed facts out (build.build_facts); the types are in model."""
