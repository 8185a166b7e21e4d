import { asyncApiPageAssets } from './bundle' with { type: 'macro' }

/** Built when this module is transpiled (from source: on the page's first request) or compiled into the binary. */
export const assets = asyncApiPageAssets()
