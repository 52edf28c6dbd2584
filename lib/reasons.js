'use strict'
// Why a stream ended, as the hub reports it ('client', 'server', 'slow',
// 'timeout', 'shutdown'), and the one rule every transport ends by: the
// same as crates/core's `CloseReason::flushes`.

/**
 * A graceful end: what was queued is written, and the response ends
 * cleanly. Otherwise (a slow, stalled or gone peer) it is cut off.
 */
function flushes(reason) {
  return reason === 'server' || reason === 'shutdown'
}

module.exports = { flushes }
