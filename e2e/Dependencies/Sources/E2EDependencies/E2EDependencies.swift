// The dependencies package's one target: Scipio builds its dependencies, not this module.
