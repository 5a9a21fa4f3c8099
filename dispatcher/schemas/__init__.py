"""marshmallow schemas for the JSON API: one module per resource (DESIGN: marshmallow at the
edges only). Load schemas validate input field by field; dump schemas shape the answers."""
