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
# Packaged mappings of further real data sets, loaded only when named (`patron demo --only online-retail-ii`): a
# real shop's invoice lines (quantity × unit price, cancellations, float ids, country names); FEBRL's person records
# with known duplicates (identity resolution: `patron identity link`).
EXAMPLE_SETS = ("online-retail-ii", "febrl")
