"""Services: the rules of the product. They flush and audit; the request boundary commits."""
