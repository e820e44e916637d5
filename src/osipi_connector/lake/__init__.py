"""Where extracted data lands: table specs (one place for every schema) and sinks behind one interface."""
