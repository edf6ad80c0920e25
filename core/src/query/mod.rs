//! Queries: filters, ordering, the index of current state, live subscriptions.
