import diagnostics from 'node:diagnostics_channel'

/**
 * The moments of a forwarded call inside the gateway, published on the diagnostics channel `zg-gateway:step` (its
 * message: the step's name) for whoever times them: `npm run bench`'s hop section lines them up with the HTTP
 * moments of every process on the path. Nothing is published, and next to nothing spent, while nobody subscribes.
 *
 * - `app`: the app has the request (Node's server and the Hono router behind it);
 * - `auth`: the request id is set and the API key checked;
 * - `body`: the body is read and parsed;
 * - `validated`: the body is checked;
 * - `routed`: the providers for the model are picked (the forwarded request built before);
 * - `relay`: the provider's answer has started and the gateway takes it up.
 */
export type GatewayStep = 'app' | 'auth' | 'body' | 'validated' | 'routed' | 'relay'

export const STEP_CHANNEL = 'zg-gateway:step'

const channel = diagnostics.channel(STEP_CHANNEL)

export function step(name: GatewayStep): void {
  if (channel.hasSubscribers) channel.publish(name)
}
