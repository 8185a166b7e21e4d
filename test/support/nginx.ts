import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Debian's nginx, as operators run it in front of the gateway. .ci/run installs nginx-light. */
export const NGINX = '/usr/sbin/nginx'
export const nginxAvailable = existsSync(NGINX)
if (!nginxAvailable && Bun.env.REQUIRE_BROWSER) throw new Error(`${NGINX} is missing where .ci/run installs it`)
if (!nginxAvailable) console.warn('skipping the nginx tests: apt-get install nginx-light')

export interface Nginx {
  baseUrl: string
  port: number
  /** Its own folder: what the configuration refers to may be copied here. */
  prefix: string
  stop(): void
}

/**
 * nginx with the whole configuration `configure` writes for the port it listens on, checked with
 * `nginx -t` first; ready once `probe` answers through it. Temporary files and logs stay in its folder.
 */
export async function startNginx(configure: (port: number, prefix: string) => string, probe = '/health', port = freePort()): Promise<Nginx> {
  const prefix = mkdtempSync(join(tmpdir(), 'sgw-nginx-'))
  const config = configure(port, prefix).replace(
    'http {',
    `http {\n    access_log off;\n    client_body_temp_path ${prefix}/body;\n    proxy_temp_path ${prefix}/proxy;`,
  )
  mkdirSync(join(prefix, 'logs'))
  // One process: killing it cuts every connection through it, as a proxy's death would (a master's
  // workers outlive it and go on serving).
  writeFileSync(join(prefix, 'nginx.conf'), `master_process off;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/logs/error.log;\n${config}`)
  const check = Bun.spawnSync([NGINX, '-t', '-p', prefix, '-c', join(prefix, 'nginx.conf')], { stderr: 'pipe' })
  if (check.exitCode !== 0) throw new Error(`nginx -t:\n${check.stderr.toString()}`)
  const child = Bun.spawn([NGINX, '-p', prefix, '-c', join(prefix, 'nginx.conf'), '-g', 'daemon off;'], { stderr: 'inherit' })
  const baseUrl = `http://127.0.0.1:${port}`
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      await fetch(`${baseUrl}${probe}`)
      return { baseUrl, port, prefix, stop: () => child.kill('SIGKILL') }
    } catch {
      await Bun.sleep(50)
    }
  }
  child.kill('SIGKILL')
  throw new Error('nginx did not start')
}

function freePort(): number {
  const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const { port } = probe
  probe.stop(true)
  return port
}

/**
 * A whole configuration of nginx in front of gateway instances, the websocket included: the first
 * of `instances` serves, each next one is its backup, as a load balancer fails over.
 */
export const gatewayProxy = (instances: string[]) => (port: number) => `events {}
http {
    upstream gateway {
${instances.map((instance, index) => `        server ${new URL(instance).host}${index > 0 ? ' backup' : ''};`).join('\n')}
    }
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    server {
        listen 127.0.0.1:${port};
        location / {
            proxy_pass http://gateway;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 1h;
        }
    }
}`
