import type { NextConfig } from 'next';

// Static export: the Rust server serves web/out at `/` on the same origin as the API,
// so there are no dynamic routes and no server features (state lives in the query string).
const config: NextConfig = {
  output: 'export',
  reactStrictMode: true,
  poweredByHeader: false,
  images: { unoptimized: true },
};

export default config;
