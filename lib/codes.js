'use strict'
// The `code` of each error the Rust hub throws that JS tells apart
// (crates/node/crates/core/src/lib.rs, `Code`). Matched by code, never by message text.

module.exports = Object.freeze({
  /** `maxClients` are connected. */
  CLIENT_LIMIT: 'ERR_SSEHUB_CLIENT_LIMIT',
  /** The hub was closed (`sse.close()`). */
  CLOSED: 'ERR_SSEHUB_CLOSED',
  /** A field that cannot be framed (a line break in event or id). */
  INVALID_FIELD: 'ERR_SSEHUB_INVALID_FIELD',
  /** The socket's fd could not be duplicated (EMFILE...): Node still owns it. */
  NO_FD: 'ERR_SSEHUB_NO_FD',
  /** The socket is no longer connected (the peer reset it). */
  NOT_CONNECTED: 'ERR_SSEHUB_NOT_CONNECTED',
  /** An option that cannot work (a Redis URL that does not parse). */
  INVALID_OPTION: 'ERR_SSEHUB_INVALID_OPTION',
  /** Redis did not take a publish (down, unreachable, or an error answer). */
  BUS: 'ERR_SSEHUB_BUS',
})
