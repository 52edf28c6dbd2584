'use strict'
// Node's EventEmitter constructor makes each emitter's listener table
// (`_events`) at once: a null-prototype object, which V8 keeps in
// dictionary mode, about 190 bytes. Per connection there are several
// (the Client, req.socket's stand-in, `res`), most of which never get a
// listener. EventEmitter makes the table on the first listener when
// `_events` is undefined (its prototype's own default), and every method
// reads an undefined table as empty, so an emitter with no listeners can
// give its table back until one is added.

/** Drops `emitter`'s listener table if it has no listener. */
function dropEmptyListenerTable(emitter) {
  if (emitter._eventsCount === 0 && emitter._events !== undefined) emitter._events = undefined
}

module.exports = { dropEmptyListenerTable }
