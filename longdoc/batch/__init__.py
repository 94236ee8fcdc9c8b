"""`longdoc batch`: many (document, question) jobs, answered locally or on a Ray cluster."""
