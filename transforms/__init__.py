"""newswash transforms: one module per cleaning stage (pure function + thin PTransform)."""
