"""The names of the demo data sets, in load order: categories before products (labels), customers before what
refers to them. Apart from the loader, so the CLI can name them without importing the importer."""

DEMO_SETS = (
    "cdnow",
    "telco-churn",
    "customer-personality",
    "hillstrom-email",
    "cfpb-complaints",
    "olist-categories",
    "olist-products",
    "olist-payments",
    "olist-leads",
)
