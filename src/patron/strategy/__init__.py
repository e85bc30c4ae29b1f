"""Strategy analytics: budget allocation, customer portfolios, price sensitivity, social networks."""
