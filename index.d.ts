// Type definitions for ssehub: Server-Sent Events for Node.js with a Rust engine.
/// <reference types="node" />

import { EventEmitter } from 'node:events'
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { ParsedUrlQuery } from 'node:querystring'

declare namespace SSE {
  /** Why a client's stream ended. */
  type CloseReason = 'client' | 'server' | 'slow' | 'timeout' | 'shutdown'

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
    /** Bytes a client may have queued before it is closed with reason `'slow'`. Default 1 MiB. */
    maxQueueBytes?: number
    /** Milliseconds a write may stall before the client is closed with reason `'timeout'`. Default 30000; 0 = never. */
    writeTimeout?: number
    /** Clients allowed at once; past it new clients get 503. Default 0 (no limit). */
    maxClients?: number
    /** `'auto'` (default): Rust owns plain TCP sockets; `'fallback'`: always write through `res`. */
    transport?: 'auto' | 'fallback'
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
  }

  class Client extends EventEmitter {
    /** The hub's id for this client, unique within its SSE instance. */
    readonly id: number
    readonly req: IncomingMessage
    /** The response; only writable on the `'fallback'` transport. */
    readonly res: ServerResponse
    /** `'native'` when Rust owns the socket, `'fallback'` when JS writes `res`. */
    readonly transport: 'native' | 'fallback'
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

declare class SSE extends EventEmitter {
  /** The `sse` 0.0.8 constructor: attaches to `server` (or to nothing, for `handleRequest` only). */
  constructor(server: HttpServer | HttpsServer | null, options?: SSE.Options)

  readonly server: HttpServer | HttpsServer | null
  /** Number of connected clients. */
  readonly clients: number

  /** Accepts a request as a stream, e.g. from an Express route after auth middleware. */
  handleRequest(req: IncomingMessage, res: ServerResponse, query?: string | ParsedUrlQuery): SSE.Client | null
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

  /** Sends one event to every client, framed once. Returns the number of clients reached. */
  broadcast(data: SSE.EventData): number
  broadcast(event: string | number, data: SSE.EventData, id?: string | number): number
  broadcast(event: SSE.EventObject): number

  /** Sends one event to the members of a channel (or of any of several, once each). */
  publish(channel: string | string[], data: SSE.EventData): number
  publish(channel: string | string[], event: string | number, data: SSE.EventData, id?: string | number): number
  publish(channel: string | string[], event: SSE.EventObject): number

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
