// ES module entry of the Drizzle adapter (`import { drizzle } from 'sqlgate-client/drizzle'`):
// the CommonJS module's exports, named and as the default export.
import adapter from './drizzle.js';

export const { drizzle, drizzleCallback } = adapter;
export default adapter;
