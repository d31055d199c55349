package login

// TransactionCookiePrefix starts the name of every login transaction
// cookie, so that other parts of the gateway can keep them from upstreams.
const TransactionCookiePrefix = txCookiePrefix
