// placeholder until implemented.
