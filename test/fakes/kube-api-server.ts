/**
 * A FAKE Kubernetes API server, for the Kubernetes actuator's tests: a node:http server on
 * loopback that answers the three calls the actuator makes, with bodies built from responses
 * recorded from real clusters (test/fixtures/kubernetes/, see its README):
 *
 * - `GET  /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale`
 * - `PATCH` (merge, strategic-merge or JSON patch) and `PUT` of the same path, which set
 *   `spec.replicas` (and `status.replicas`, as if the controller caught up at once)
 * - `GET  /apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector=kubernetes.io/service-name={svc}`
 *
 * A test adds Deployments, sets each Service's endpoints and their conditions, and reads back every
 * request (verb, path, query, content type, body). A Service whose endpoints no test set is
 * answered from the recorded list as it is. It is not an API server: no auth, no watch, no
 * resourceVersion checks.
 */
import { readFileSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/kubernetes/', import.meta.url));
type Json = Record<string, unknown>;
const fixture = (name: string): Json => JSON.parse(readFileSync(`${FIXTURES}${name}`, 'utf8')) as Json;

/** One request as the fake received it. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly contentType: string | undefined;
  readonly body: unknown;
}

/** A pod endpoint a test puts behind a Service. Conditions left undefined are omitted (nil). */
export interface FakeEndpoint {
  readonly pod: string;
  readonly ip: string;
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
}

/** Status code and JSON body of an answer. */
type Reply = [number, unknown];

interface FakeDeployment {
  replicas: number;
  statusReplicas: number;
  resourceVersion: number;
  readonly selector: string;
}

export class FakeKubeApiServer {
  readonly requests: RecordedRequest[] = [];
  private readonly deployments = new Map<string, FakeDeployment>();
  private readonly services = new Map<string, { endpoints: FakeEndpoint[]; port: number }>();
  private readonly scaleTemplate = fixture('scale.json');
  private readonly sliceList = fixture('endpointslice-list.json');
  /** Status to answer every request with instead (e.g. 500), or null. */
  failWith: number | null = null;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeKubeApiServer> {
    let fake: FakeKubeApiServer | undefined;
    const server = createServer((req, res) => void fake!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    fake = new FakeKubeApiServer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return fake;
  }

  /** A KubeConfig that points at this fake (as a test injects it). */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser(
      { name: 'fake', server: this.url, skipTLSVerify: true },
      { name: 'test', token: 'fake-token' },
    );
    return kc;
  }

  addDeployment(namespace: string, name: string, replicas = 0): void {
    this.deployments.set(`${namespace}/${name}`, {
      replicas,
      statusReplicas: replicas,
      resourceVersion: 1000,
      selector: `app=${name}`,
    });
  }

  /** spec.replicas and status.replicas of a Deployment. */
  scaleOf(namespace: string, name: string): { spec: number; status: number } | undefined {
    const d = this.deployments.get(`${namespace}/${name}`);
    return d && { spec: d.replicas, status: d.statusReplicas };
  }

  /** The endpoints of `service` (one EndpointSlice), replacing what was there. */
  setEndpoints(namespace: string, service: string, endpoints: FakeEndpoint[], port = 8000): void {
    this.services.set(`${namespace}/${service}`, { endpoints, port });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', this.url);
    const raw = await readBody(req);
    const contentType = req.headers['content-type'];
    let body: unknown = raw;
    if (raw !== '' && contentType?.includes('json')) body = JSON.parse(raw);
    this.requests.push({
      method: req.method ?? '',
      path: u.pathname,
      query: Object.fromEntries(u.searchParams),
      contentType,
      body,
    });
    send(res, ...this.route(req.method ?? '', u, contentType, body));
  }

  private route(method: string, u: URL, contentType: string | undefined, body: unknown): Reply {
    if (this.failWith !== null)
      return [this.failWith, status(this.failWith, 'InternalError', 'injected failure')];
    const scale = u.pathname.match(/^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments\/([^/]+)\/scale$/);
    if (scale) return this.scale(method, scale[1]!, scale[2]!, contentType, body);
    const slices = u.pathname.match(/^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([^/]+)\/endpointslices$/);
    if (slices && method === 'GET')
      return this.endpointSlices(slices[1]!, u.searchParams.get('labelSelector'));
    return [404, status(404, 'NotFound', 'the server could not find the requested resource')];
  }

  private scale(method: string, ns: string, name: string, type: string | undefined, body: unknown): Reply {
    const d = this.deployments.get(`${ns}/${name}`);
    if (!d) {
      const details = { name, group: 'apps', kind: 'deployments' };
      return [404, status(404, 'NotFound', `deployments.apps "${name}" not found`, details)];
    }
    if (method === 'PATCH' || method === 'PUT') {
      const replicas = replicasFrom(method, type, body);
      if (replicas === undefined)
        return [415, status(415, 'UnsupportedMediaType', `unsupported patch or body (${type})`)];
      d.replicas = replicas;
      d.statusReplicas = replicas;
      d.resourceVersion++;
    } else if (method !== 'GET') {
      return [405, status(405, 'MethodNotAllowed', `${method} is not supported`)];
    }
    const out = structuredClone(this.scaleTemplate) as { metadata: Json; spec: Json; status: Json };
    Object.assign(out.metadata, { name, namespace: ns, resourceVersion: String(d.resourceVersion) });
    out.spec.replicas = d.replicas;
    out.status.replicas = d.statusReplicas;
    out.status.selector = d.selector;
    return [200, out];
  }

  private endpointSlices(ns: string, selector: string | null): Reply {
    const m = selector?.match(/^kubernetes\.io\/service-name=([a-z0-9.-]+)$/);
    if (!m) {
      const msg = `this fake needs labelSelector=kubernetes.io/service-name=<name>, got ${selector}`;
      return [400, status(400, 'BadRequest', msg)];
    }
    const service = m[1]!;
    const list = structuredClone(this.sliceList) as { items: Json[] };
    const recorded = list.items.filter((s) => {
      const meta = s.metadata as { namespace: string; labels?: Record<string, string> };
      return meta.namespace === ns && meta.labels?.['kubernetes.io/service-name'] === service;
    });
    const set = this.services.get(`${ns}/${service}`);
    list.items = set ? [this.slice(ns, service, set.endpoints, set.port)] : recorded;
    return [200, list];
  }

  /** One EndpointSlice built on the recorded kube-dns slice: only names, endpoints and the port change. */
  private slice(ns: string, service: string, endpoints: FakeEndpoint[], port: number): Json {
    const template = structuredClone((this.sliceList as { items: Json[] }).items[1]!) as {
      metadata: Json & { labels: Record<string, string>; ownerReferences: Json[] };
      endpoints: Json[];
      ports: Json[];
    };
    const epTemplate = template.endpoints[0] as { targetRef: Json; topology: Json };
    Object.assign(template.metadata, {
      name: `${service}-x7k2p`,
      generateName: `${service}-`,
      namespace: ns,
      selfLink: `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/${service}-x7k2p`,
    });
    template.metadata.labels['kubernetes.io/service-name'] = service;
    Object.assign(template.metadata.ownerReferences[0]!, { name: service });
    template.endpoints = endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: {
        ...(e.ready !== undefined ? { ready: e.ready } : {}),
        ...(e.serving !== undefined ? { serving: e.serving } : {}),
        ...(e.terminating !== undefined ? { terminating: e.terminating } : {}),
      },
      targetRef: { ...epTemplate.targetRef, namespace: ns, name: e.pod },
      topology: epTemplate.topology,
    }));
    template.ports = [{ name: 'http', protocol: 'TCP', port }];
    return template;
  }
}

/** spec.replicas carried by a scale write, by how the client encoded it. */
function replicasFrom(method: string, type: string | undefined, body: unknown): number | undefined {
  const mime = type?.split(';')[0]?.trim();
  if (method === 'PUT' && mime === 'application/json')
    return (body as { spec?: { replicas?: number } }).spec?.replicas;
  if (mime === 'application/merge-patch+json' || mime === 'application/strategic-merge-patch+json')
    return (body as { spec?: { replicas?: number } }).spec?.replicas;
  if (mime === 'application/json-patch+json' && Array.isArray(body)) {
    const op = body.find(
      (o: { op?: string; path?: string }) =>
        o.path === '/spec/replicas' && (o.op === 'replace' || o.op === 'add'),
    );
    return (op as { value?: number } | undefined)?.value;
  }
  return undefined;
}

function status(code: number, reason: string, message: string, details?: Json): Json {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

function send(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      s += d;
    });
    req.on('end', () => resolve(s));
    req.on('error', reject);
  });
}
