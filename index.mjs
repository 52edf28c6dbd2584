// ESM entry: `import SSE from 'ssehub'` or `import { SSE, Client } from 'ssehub'`.
import SSE from './index.js'

export const Client = SSE.Client
export { SSE }
export default SSE
