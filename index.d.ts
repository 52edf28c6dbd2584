// Type definitions for ssehub: Server-Sent Events for Node.js with a Rust engine.
/// <reference types="node" />

import { EventEmitter } from 'node:events'
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { Http2SecureServer, Http2Server, Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { ParsedUrlQuery } from 'node:querystring'

declare namespace SSE {
  /** Why a client's stream ended. */
  /**
   * Why a client's stream ended. `'refused'`: it never opened (HEAD, past
   * `maxClients`, during shutdown); `handleRequest` returns such a client
   * already closed rather than null.
   */
  type CloseReason = 'client' | 'server' | 'slow' | 'timeout' | 'shutdown' | 'refused'

  /** The request types `handleRequest` takes: HTTP/1 and HTTP/2 (compat API). */
  type Request = IncomingMessage | Http2ServerRequest
  type Response = ServerResponse | Http2ServerResponse
  /** The servers `new SSE()` attaches to. */
  type AnyServer = HttpServer | HttpsServer | Http2Server | Http2SecureServer

  /** Anything `send` accepts as data: strings as-is, numbers/booleans stringified, objects as JSON. */
  type EventData = string | number | boolean | bigint | Buffer | object | null | undefined

  /** One event, in the object form of `send`. */
  interface EventObject {
    /** The event type; omitted means `message`. Must not contain a line break. */
    event?: string | number
    /** The payload; each line of it becomes one `data:` line. */
    data?: EventData
    /** The id the client echoes back as `Last-Event-ID`. Must not contain a line break. */
    id?: string | number
    /** The client's reconnection delay, in milliseconds. */
    retry?: number
  }

  interface Options {
    /** Path the stream is served on; the first `*` matches anything. Default `/sse`. */
    path?: string
    /**
     * Decides whether a request may connect; may return a Promise. A falsy
     * result (or a throw/rejection) passes the request to the server's other
     * `'request'` listeners.
     */
    verifyRequest?: ((req: IncomingMessage) => boolean | Promise<boolean>) | null
    /** Milliseconds between `:` comments on an idle stream; 0 turns them off. Default 15000. */
    heartbeat?: number
    /** Reconnection delay sent to every client when it connects (`retry:`), in milliseconds. */
    retry?: number | null
    /** Extra response headers, e.g. CORS or `X-Accel-Buffering: no`. */
    headers?: Record<string, string | number> | null
    /** Number of recent broadcast/published events kept for `Last-Event-ID` replay. Default 0 (off). */
    history?: number
    /** Frame bytes the history may hold (oldest events go first). Default 16 MiB; 0 = no byte bound. */
    historyBytes?: number
    /** Bytes a client may have queued before it is closed with reason `'slow'`. Default 1 MiB. */
    maxQueueBytes?: number
    /** Milliseconds a write may stall before the client is closed with reason `'timeout'`. Default 30000; 0 = never. */
    writeTimeout?: number
    /** Clients allowed at once; past it new clients are refused (see `refuse`). Default 0 (no limit). */
    maxClients?: number
    /**
     * `'auto'` (default) and `'native'`: Rust owns plain TCP sockets, the JS
     * fallback serves the rest; `'fallback'`: always write through `res`.
     */
    transport?: 'auto' | 'native' | 'fallback'
    /**
     * How a stream is refused past `maxClients` or during `sse.close()`:
     * `'503'` (default, with `Retry-After`), or `'retry'`: a 200 stream that
     * only sends `retry: <retryAfter>` and ends, so EventSource comes back
     * by itself (it gives up for good on a non-200 answer).
     */
    refuse?: '503' | 'retry'
    /** Milliseconds a refused client should wait before trying again. Default 5000. */
    retryAfter?: number
    /**
     * Share channels and history with every other node (processes,
     * `cluster` workers, daemons) through this Redis: a URL like
     * `'redis://127.0.0.1:6379/0'` (`rediss://` for TLS,
     * `redis+sentinel://host:26379/mymaster` for the primary Sentinel
     * names), or `{ url, prefix, ttl, ca }`. Then `broadcast` and `publish` return a Promise of the
     * event's id, and `history` is kept in Redis Streams, so a client
     * resumes on any node. `client.send` stays local.
     */
    redis?: string | RedisOptions | null
  }

  interface RedisOptions {
    url: string
    /** Prepended to every Redis key and channel. Default `'ssehub:'`. */
    prefix?: string
    /**
     * Seconds a channel's keys (its stream) outlive its last publish; a
     * client resuming from an id older than this gets `ssehub-gap`.
     * Default 86400 (a day).
     */
    ttl?: number
    /**
     * For TLS (`rediss://`): the CA certificates (PEM text) to check
     * Redis's certificate with, in place of the system's roots.
     */
    ca?: string | Buffer
  }

  /**
   * What `broadcast` and `publish` return: the number of open local
   * clients the event was queued for, or, with the `redis` option, a
   * Promise of the event's id (null for an empty event) that rejects
   * (`code` `'ERR_SSEHUB_BUS'`) when Redis did not take it.
   */
  type Published<O> = O extends { redis: string | RedisOptions } ? Promise<string | null> : number

  /** The Redis bus, in `stats()` (null without the `redis` option). */
  interface BusStats {
    /** Whether the subscriber connection is up. */
    connected: boolean
    /** Times the node connected again after losing Redis. */
    reconnects: number
    /** Publishes Redis did not take (their Promises rejected). */
    publishesFailed: number
    /**
     * Redis errors met, by class: each publish refused and each
     * connection attempt that failed. `unavailable`: down, unreachable,
     * too slow; `oom`: out of memory; `auth`: password or ACL user
     * refused; `cluster`: a Redis Cluster redirecting (its slot
     * moving) or down; `other`.
     */
    errors: { unavailable: number, oom: number, auth: number, cluster: number, other: number }
    /** Events delivered from the streams after a reconnect. */
    caughtUp: number
    /** `ssehub-gap` events sent (history lost or trimmed). */
    gaps: number
    /** Channels this node is subscribed to. */
    subscriptions: number
    /** Why the connection was last lost, if it was. */
    lastError?: string
  }

  /** The options after validation, defaults filled in (`sse.options`). */
  interface ResolvedOptions {
    readonly path: string
    readonly verifyRequest: ((req: IncomingMessage) => boolean | Promise<boolean>) | null
    readonly heartbeat: number
    readonly retry: number | null
    readonly headers: Readonly<Record<string, string | number>> | null
    readonly history: number
    readonly historyBytes: number
    readonly maxQueueBytes: number
    readonly writeTimeout: number
    readonly maxClients: number
    readonly transport: 'auto' | 'native' | 'fallback'
    readonly refuse: '503' | 'retry'
    readonly retryAfter: number
    readonly redis: string | RedisOptions | null
  }

  interface Stats {
    clients: number
    connectedTotal: number
    eventsPublished: number
    eventsDelivered: number
    droppedSlow: number
    channels: number
    nativeClients: number
    fallbackClients: number
    /** Stream requests whose takeover by Rust failed (no fd left, peer already gone). */
    takeoverFailures: number
    /** The Redis bus; null without the `redis` option. */
    bus: BusStats | null
  }

  class Client extends EventEmitter {
    /** The hub's id for this client, unique within its SSE instance. */
    readonly id: number
    /** The request; on the native transport `req.socket` stands in for the Rust-owned socket. */
    readonly req: IncomingMessage | Http2ServerRequest
    /** The response; `write`/`end` reach the client in order with `send` on every transport. */
    readonly res: ServerResponse | Http2ServerResponse
    /** `'native'` when Rust owns the socket, `'fallback'` when JS writes `res`, `'none'` if refused. */
    readonly transport: 'native' | 'fallback' | 'none'
    /** The `Last-Event-ID` header (or `lastEventId` query parameter) the client connected with. */
    readonly lastEventId: string | null
    /** The peer's address. */
    readonly remoteAddress: string | undefined
    /** Why the stream ended; null while it is open. */
    readonly closeReason: CloseReason | null
    readonly closed: boolean
    /** Channels this client has joined. */
    readonly channels: string[]
    /** Bytes queued for this client and not yet written. */
    readonly queuedBytes: number

    /** `send()` sends nothing. Returns false if the client has gone. */
    send(): boolean
    /** Sends `data` as an unnamed (`message`) event. */
    send(data: EventData): boolean
    /** Sends a named event. */
    send(event: string | number, data: EventData, id?: string | number): boolean
    /** Sends an event given as an object. */
    send(event: EventObject): boolean

    /** Ends the stream once what was sent has been written. */
    close(): void
    /** Joins a channel. */
    join(channel: string): boolean
    /** Leaves a channel; false if the client was not in it. */
    leave(channel: string): boolean

    on(event: 'close', listener: (reason: CloseReason) => void): this
    on(event: string | symbol, listener: (...args: any[]) => void): this
    once(event: 'close', listener: (reason: CloseReason) => void): this
    once(event: string | symbol, listener: (...args: any[]) => void): this
  }
}

declare class SSE<O extends SSE.Options = SSE.Options> extends EventEmitter {
  /** The `sse` 0.0.8 constructor: attaches to `server` (or to nothing, for `handleRequest` only). */
  constructor(server: SSE.AnyServer | null, options?: O)

  readonly server: SSE.AnyServer | null
  /** The validated options. */
  readonly options: SSE.ResolvedOptions
  /** Number of connected clients. */
  readonly clients: number

  /**
   * Accepts a request as a stream, e.g. from an Express route after auth
   * middleware. Never null: a refused request gives a closed client.
   */
  handleRequest(req: SSE.Request, res: SSE.Response, query?: string | ParsedUrlQuery): SSE.Client
  /**
   * The Fetch API entry (Hono on Node, Fetch-style route handlers): answers a
   * Web `Request` with a `Response` whose body, a `ReadableStream`, the hub
   * feeds with the same framing, heartbeats, channels and replay as
   * `handleRequest`. `503` while closing or past `maxClients`; headers only
   * for `HEAD`. For a client accepted this way, `client.req` is the `Request`
   * and `client.res` the `Response`.
   */
  fetch(request: Request): Response
  matchesPath(pathname: string, pattern: string): boolean

  /**
   * Sends one event to every client, framed once. Returns the number of
   * open clients it was queued for; with `redis`, a Promise of the event's id.
   */
  broadcast(data: SSE.EventData): SSE.Published<O>
  broadcast(event: string | number, data: SSE.EventData, id?: string | number): SSE.Published<O>
  broadcast(event: SSE.EventObject): SSE.Published<O>

  /**
   * Sends one event to the members of a channel (or of any of several, once
   * each); with `redis`, on every node, as a Promise of the event's id.
   */
  publish(channel: string | string[], data: SSE.EventData): SSE.Published<O>
  publish(channel: string | string[], event: string | number, data: SSE.EventData, id?: string | number): SSE.Published<O>
  publish(channel: string | string[], event: SSE.EventObject): SSE.Published<O>

  stats(): SSE.Stats
  /** Ends every stream after what was sent; resolves when all have closed. */
  close(): Promise<void>

  on(event: 'connection', listener: (client: SSE.Client, query: ParsedUrlQuery) => void): this
  on(event: 'error', listener: (err: unknown) => void): this
  on(event: string | symbol, listener: (...args: any[]) => void): this
  once(event: 'connection', listener: (client: SSE.Client, query: ParsedUrlQuery) => void): this
  once(event: string | symbol, listener: (...args: any[]) => void): this

  static SSE: typeof SSE
  static default: typeof SSE
}

export = SSE
