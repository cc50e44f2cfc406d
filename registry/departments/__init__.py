"""City departments that own technologies."""
