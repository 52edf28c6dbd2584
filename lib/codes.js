'use strict'
// The `code` of each error the Rust hub throws that JS tells apart, as the
// addon defines them (crates/node/src/codes.rs): matched by code, never by
// message text.
//
// CLIENT_LIMIT: `maxClients` are connected. CLOSED: the hub was closed
// (`sse.close()`). INVALID_FIELD: a field that cannot be framed (a line
// break in event or id). NO_FD: the socket's fd could not be duplicated
// (EMFILE...): Node still owns it. NOT_CONNECTED: the peer reset the
// socket. INVALID_OPTION: an option that cannot work (a Redis URL that
// does not parse). BUS: Redis did not take a publish.

const { errorCodes } = require('../binding')

module.exports = Object.freeze(Object.fromEntries(errorCodes()))
