// ES module entry of sqlgate-client (`import { Client } from 'sqlgate-client'`):
// the CommonJS module's exports, named and as the default export.
import client from './index.js';

export const {
  Client, Decimal, SqlgateError, SqlgateDriverError, toValue, fromValue, describeError, status, grpc, protoRoot, drizzleCallback,
} = client;
export default client;
