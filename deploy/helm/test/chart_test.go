package chart

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

const redisValues = `
config:
  session:
    store: redis
  redis:
    addrs: [redis-0.redis:26379, redis-1.redis:26379, redis-2.redis:26379]
    master_name: gatehouse
secrets:
  redisPassword: { name: gatehouse-redis, key: password }
`

func TestDefaultValues(t *testing.T) {
	o := render(t, "")
	c := o.container(t)
	spec := o.deployment.Spec

	if spec.Replicas == nil || *spec.Replicas != 1 {
		t.Errorf("replicas = %v; want 1", spec.Replicas)
	}
	if spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %q with the bolt store; want Recreate (one process holds the file)", spec.Strategy.Type)
	}
	checkSecurity(t, &spec.Template.Spec, c)
	checkProbes(t, c, "/bff/healthz", "/bff/readyz")
	checkServicePorts(t, o.service, "http")
	if p := containerPort(c, "admin"); p != 9090 {
		t.Errorf("admin container port = %d; want 9090 (its own port)", p)
	}
	if p := containerPort(c, "http"); p != 8080 {
		t.Errorf("http container port = %d; want 8080", p)
	}
	mounts := checkSecretMounts(t, o, map[string]string{
		"gatehouse-oidc":         "client-secret",
		"gatehouse-session-keys": "keys",
		"gatehouse-admin":        "token",
	})
	cfg := loadConfig(t, o, mounts)
	var raw struct {
		Session struct {
			BoltPath string `json:"bolt_path"`
		} `json:"session"`
	}
	if err := yaml.Unmarshal([]byte(o.configMap.Data["gatehouse.yaml"]), &raw); err != nil {
		t.Fatal(err)
	}
	if cfg.Session.Store != "bolt" || !strings.HasPrefix(raw.Session.BoltPath, stateDir(t, o)+"/") {
		t.Errorf("store %q at %q; want bolt under the state volume %s", cfg.Session.Store, raw.Session.BoltPath, stateDir(t, o))
	}
	var preStop int64
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Error("no preStop sleep: the pod would stop accepting before the Service stops sending to it")
	} else {
		preStop = c.Lifecycle.PreStop.Sleep.Seconds
	}
	if grace := *spec.Template.Spec.TerminationGracePeriodSeconds; cfg.Server.ShutdownTimeout.Seconds()+float64(preStop) >= float64(grace) {
		t.Errorf("preStop %ds + shutdown_timeout %s is not below terminationGracePeriodSeconds %d: the kubelet would kill a drain", preStop, cfg.Server.ShutdownTimeout, grace)
	}
	if o.pdb == nil || o.pdb.Spec.MaxUnavailable == nil || o.pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget = %+v; want maxUnavailable 1", o.pdb)
	}
	if o.hpa != nil || o.netpol != nil || o.pvc != nil {
		t.Error("HPA, NetworkPolicy and PVC are off by default")
	}
	if o.sa == nil || o.sa.AutomountServiceAccountToken == nil || *o.sa.AutomountServiceAccountToken {
		t.Error("the ServiceAccount must not mount an API token: Gatehouse never calls the Kubernetes API")
	}
	if env := envNamed(c, "GOMEMLIMIT"); env == nil || env.ValueFrom == nil || env.ValueFrom.ResourceFieldRef == nil ||
		env.ValueFrom.ResourceFieldRef.Resource != "limits.memory" {
		t.Errorf("GOMEMLIMIT = %+v; want it from limits.memory", env)
	}
	if !strings.Contains(o.notes, "gatehouse-session-keys") || !strings.Contains(o.notes, "emptyDir") {
		t.Errorf("NOTES.txt does not name the Secrets or warn about the emptyDir:\n%s", o.notes)
	}
}

func TestThreeReplicasOnRedis(t *testing.T) {
	o := render(t, "replicaCount: 3\n"+redisValues)
	spec := o.deployment.Spec
	if spec.Replicas == nil || *spec.Replicas != 3 {
		t.Errorf("replicas = %v; want 3", spec.Replicas)
	}
	if spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy %+v; want a rolling update that never drops below the replica count", spec.Strategy)
	}
	c := o.container(t)
	checkSecurity(t, &spec.Template.Spec, c)
	checkProbes(t, c, "/bff/healthz", "/bff/readyz")
	checkServicePorts(t, o.service, "http")
	mounts := checkSecretMounts(t, o, map[string]string{
		"gatehouse-oidc":         "client-secret",
		"gatehouse-session-keys": "keys",
		"gatehouse-admin":        "token",
		"gatehouse-redis":        "password",
	})
	cfg := loadConfig(t, o, mounts)
	if cfg.Session.Store != "redis" || cfg.Redis.MasterName != "gatehouse" || cfg.Redis.Password != "password-from-the-secret" {
		t.Errorf("redis config = %+v", cfg.Redis)
	}
	if o.pvc != nil || volumeNamed(&spec.Template.Spec, "state").EmptyDir == nil {
		t.Error("a Redis deployment needs no persistent volume")
	}
}

func TestReplicasNeedASharedStore(t *testing.T) {
	for _, tc := range []struct{ name, values string }{
		{"memory", "replicaCount: 3\nconfig: { session: { store: memory } }"},
		{"bolt by default", "replicaCount: 2"},
		{"autoscaling on bolt", "autoscaling: { enabled: true }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChart(tc.values)
			if err == nil || !strings.Contains(err.Error(), "needs a store shared by all pods") {
				t.Fatalf("render error = %v; want the replicas/store rule", err)
			}
		})
	}
}

func TestSecretsAndManagedKeysStayOutOfValues(t *testing.T) {
	for _, values := range []string{
		"config: { oidc: { client_secret: hunter2 } }",
		"config: { session: { keys: [k1:abc] } }",
		"config: { admin: { token: t } }",
		"config: { redis: { password: p } }",
		"config: { server: { listen: 0.0.0.0:1 } }",
		"secrets: { sessionKeys: { name: '' } }",
	} {
		if _, err := renderChart(values); err == nil {
			t.Errorf("the chart rendered %s", values)
		}
	}
}

func TestValuesSchemaRefusesTypos(t *testing.T) {
	for _, values := range []string{
		"replicaCont: 3",
		"secrets: { clientSecret: { nmae: x, key: y } }",
		"autoscaling: { enabeld: true }",
		"replicaCount: three",
		"image: { pullPolicy: Sometimes }",
	} {
		_, err := renderChart(values)
		if err == nil || !strings.Contains(err.Error(), "schema") {
			t.Errorf("values %s: render error %v; want the schema to refuse them", values, err)
		}
	}
}

func TestNetworkPolicy(t *testing.T) {
	o := render(t, `
networkPolicy:
  enabled: true
  adminFrom:
    - namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: monitoring } }
`)
	np := o.netpol
	if np == nil {
		t.Fatal("no NetworkPolicy")
	}
	if got := np.Spec.PodSelector.MatchLabels; got["app.kubernetes.io/instance"] != "gh" || got["app.kubernetes.io/name"] != "gatehouse" {
		t.Errorf("podSelector %v does not select the release's pods", got)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("policyTypes %v; want Ingress only while no egress rule is given", np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) != 2 {
		t.Fatalf("ingress rules %+v; want the http port and the admin port", np.Spec.Ingress)
	}
	if r := np.Spec.Ingress[0]; r.Ports[0].Port.String() != "http" || len(r.From) != 0 {
		t.Errorf("first rule %+v; want the http port from anywhere", r)
	}
	if r := np.Spec.Ingress[1]; r.Ports[0].Port.String() != "admin" || len(r.From) != 1 || r.From[0].NamespaceSelector == nil {
		t.Errorf("second rule %+v; want the admin port from the monitoring namespace only", r)
	}

	o = render(t, `
networkPolicy:
  enabled: true
  egress:
    - to: [ { ipBlock: { cidr: 10.0.0.0/8 } } ]
`)
	if !slices.Contains(o.netpol.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || len(o.netpol.Spec.Egress) != 2 {
		t.Errorf("egress %+v; want DNS and the given rule", o.netpol.Spec.Egress)
	}
	if len(o.netpol.Spec.Ingress) != 1 {
		t.Errorf("ingress %+v; want no admin rule without adminFrom", o.netpol.Spec.Ingress)
	}
}

func TestAutoscaling(t *testing.T) {
	o := render(t, "autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 6 }\n"+redisValues)
	if o.hpa == nil {
		t.Fatal("no HorizontalPodAutoscaler")
	}
	if o.deployment.Spec.Replicas != nil {
		t.Errorf("replicas = %d; the HPA owns the replica count", *o.deployment.Spec.Replicas)
	}
	ref := o.hpa.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.Name != o.deployment.Name || ref.APIVersion != "apps/v1" {
		t.Errorf("scaleTargetRef %+v; want the Deployment %s", ref, o.deployment.Name)
	}
	if o.hpa.Spec.MinReplicas == nil || *o.hpa.Spec.MinReplicas != 2 || o.hpa.Spec.MaxReplicas != 6 {
		t.Errorf("HPA bounds %v..%d; want 2..6", o.hpa.Spec.MinReplicas, o.hpa.Spec.MaxReplicas)
	}
	if len(o.hpa.Spec.Metrics) != 1 || o.hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
		t.Errorf("HPA metrics %+v; want CPU only by default", o.hpa.Spec.Metrics)
	}
}

func TestAdminExposedOnlyWhenAsked(t *testing.T) {
	o := render(t, "service: { exposeAdmin: true }")
	checkServicePorts(t, o.service, "http", "admin")

	// Without an admin token the admin listener stays on the pod's loopback.
	o = render(t, "secrets: { adminToken: { name: '' } }")
	if p := containerPort(o.container(t), "admin"); p != 0 {
		t.Errorf("admin port %d declared without an admin token", p)
	}
	cfg := loadConfig(t, o, checkSecretMounts(t, o, map[string]string{
		"gatehouse-oidc": "client-secret", "gatehouse-session-keys": "keys",
	}))
	if cfg.Admin.Listen != "127.0.0.1:9090" || cfg.Admin.Token != "" {
		t.Errorf("admin %+v; want loopback without a token", cfg.Admin)
	}
}

func TestBoltPersistence(t *testing.T) {
	o := render(t, "persistence: { enabled: true, size: 2Gi }")
	if o.pvc == nil || o.pvc.Spec.Resources.Requests.Storage().String() != "2Gi" {
		t.Fatalf("PVC %+v; want 2Gi", o.pvc)
	}
	v := volumeNamed(&o.deployment.Spec.Template.Spec, "state")
	if v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != o.pvc.Name {
		t.Errorf("state volume %+v; want the claim %s", v, o.pvc.Name)
	}
}

// checkSecurity asserts the pod and container security settings.
func checkSecurity(t *testing.T, pod *corev1.PodSpec, c *corev1.Container) {
	t.Helper()
	ps := pod.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.SeccompProfile == nil ||
		ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v; want runAsNonRoot and seccomp RuntimeDefault", ps)
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("no container securityContext")
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("container: runAsNonRoot is not true")
	}
	if sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("container: runAsUser %v; want a non-zero uid", sc.RunAsUser)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("container: readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("container: allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("container: privileged")
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("container: capabilities %+v; want drop [ALL] and nothing added", sc.Capabilities)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container: seccompProfile %+v; want RuntimeDefault", sc.SeccompProfile)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("pod: automountServiceAccountToken is not false")
	}
}

// checkProbes asserts liveness and readiness on the main port's health
// paths.
func checkProbes(t *testing.T, c *corev1.Container, health, ready string) {
	t.Helper()
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, health}, {"readiness", c.ReadinessProbe, ready}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe %+v; want an HTTP GET", p.name, p.probe)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path || g.Port.String() != "http" || g.Scheme != corev1.URISchemeHTTP {
			t.Errorf("%s probe GET %s %s:%s; want HTTP %s on the http port", p.name, g.Scheme, g.Path, g.Port.String(), p.path)
		}
		if p.probe.TimeoutSeconds < 1 || p.probe.PeriodSeconds < 1 || p.probe.FailureThreshold < 1 {
			t.Errorf("%s probe timing %+v", p.name, p.probe.ProbeHandler)
		}
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.TimeoutSeconds <= 3 {
		t.Errorf("readiness timeout %ds; want more than the 3 s readyz bounds its own check with", c.ReadinessProbe.TimeoutSeconds)
	}
}

// checkServicePorts asserts the Service's ports by name, in order.
func checkServicePorts(t *testing.T, s *corev1.Service, want ...string) {
	t.Helper()
	var got []string
	for _, p := range s.Spec.Ports {
		got = append(got, p.Name)
		if p.TargetPort.String() != p.Name {
			t.Errorf("service port %s targets %s", p.Name, p.TargetPort.String())
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("service ports %v; want %v", got, want)
	}
}

// checkSecretMounts asserts that each Secret (name: key) is a read-only
// directory mount with only that key, and returns the file each key lands
// in.
func checkSecretMounts(t *testing.T, o *objects, want map[string]string) map[string]string {
	t.Helper()
	pod := &o.deployment.Spec.Template.Spec
	c := o.container(t)
	files := map[string]string{}
	for _, v := range pod.Volumes {
		if v.Secret == nil {
			continue
		}
		key, ok := want[v.Secret.SecretName]
		if !ok {
			t.Errorf("volume %s mounts the unexpected Secret %s", v.Name, v.Secret.SecretName)
			continue
		}
		if len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != key {
			t.Errorf("Secret %s: items %+v; want only %s", v.Secret.SecretName, v.Secret.Items, key)
			continue
		}
		if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o007 != 0 {
			t.Errorf("Secret %s: mode %v; want no access for others", v.Secret.SecretName, v.Secret.DefaultMode)
		}
		var mount *corev1.VolumeMount
		for i := range c.VolumeMounts {
			if c.VolumeMounts[i].Name == v.Name {
				mount = &c.VolumeMounts[i]
			}
		}
		if mount == nil || !mount.ReadOnly || mount.SubPath != "" {
			t.Errorf("Secret %s: mount %+v; want a read-only directory mount (no subPath, so rotation reaches the file)", v.Secret.SecretName, mount)
			continue
		}
		files[v.Secret.SecretName] = filepath.Join(mount.MountPath, v.Secret.Items[0].Path)
	}
	for name := range want {
		if _, ok := files[name]; !ok {
			t.Errorf("Secret %s is not mounted", name)
		}
	}
	return files
}

// loadConfig writes the ConfigMap's gatehouse.yaml and the Secret files
// (under a temporary root standing for the container's filesystem, with
// test contents) and loads and validates it with the gateway's own loader.
func loadConfig(t *testing.T, o *objects, secretFiles map[string]string) *config.Config {
	t.Helper()
	text, ok := o.configMap.Data["gatehouse.yaml"]
	if !ok {
		t.Fatal("the ConfigMap has no gatehouse.yaml")
	}
	c := o.container(t)
	var cfgMount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == "config" {
			cfgMount = &c.VolumeMounts[i]
		}
	}
	if cfgMount == nil || cfgMount.SubPath != "gatehouse.yaml" || !slices.Equal(c.Args, []string{"serve", "--config", cfgMount.MountPath}) {
		t.Fatalf("the container runs %q but mounts the configuration at %+v", c.Args, cfgMount)
	}
	root := t.TempDir()
	key, err := seal.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	contents := map[string]string{
		"gatehouse-oidc":         "client-secret-from-the-secret\n",
		"gatehouse-session-keys": key + "\n",
		"gatehouse-admin":        "admin-token-from-the-secret\n",
		"gatehouse-redis":        "password-from-the-secret\n",
	}
	for name, path := range secretFiles {
		writeFile(t, filepath.Join(root, path), contents[name])
		text = strings.ReplaceAll(text, path, filepath.Join(root, path))
	}
	if strings.Contains(text, " /etc/") {
		t.Errorf("gatehouse.yaml names a file under /etc that no Secret mount provides:\n%s", text)
	}
	text = strings.ReplaceAll(text, stateDir(t, o), filepath.Join(root, "state"))
	p := filepath.Join(root, "gatehouse.yaml")
	writeFile(t, p, text)
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatalf("the gateway cannot read the rendered gatehouse.yaml: %v\n%s", err, text)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the gateway refuses the rendered gatehouse.yaml: %v\n%s", err, text)
	}
	if _, ok := secretFiles["gatehouse-oidc"]; ok && cfg.OIDC.ClientSecret != "client-secret-from-the-secret" {
		t.Errorf("client secret %q was not read from the mounted file", cfg.OIDC.ClientSecret)
	}
	if len(cfg.Session.Keys) != 1 || cfg.Session.Keys[0] != key {
		t.Errorf("session keys were not read from the mounted file")
	}
	if _, ok := secretFiles["gatehouse-admin"]; ok && cfg.Admin.Token != "admin-token-from-the-secret" {
		t.Errorf("admin token was not read from the mounted file")
	}
	if got, want := cfg.Server.Listen, "0.0.0.0:"+itoa(containerPort(c, "http")); got != want {
		t.Errorf("server.listen %q; want %q, the container's http port", got, want)
	}
	if p := containerPort(c, "admin"); p != 0 && cfg.Admin.Listen != "0.0.0.0:"+itoa(p) {
		t.Errorf("admin.listen %q; want the container's admin port %d", cfg.Admin.Listen, p)
	}
	return cfg
}

// stateDir is where the state volume is mounted.
func stateDir(t *testing.T, o *objects) string {
	t.Helper()
	for _, m := range o.container(t).VolumeMounts {
		if m.Name == "state" {
			if m.ReadOnly {
				t.Error("the state volume is read-only")
			}
			return m.MountPath
		}
	}
	t.Fatal("no state volume mount")
	return ""
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func containerPort(c *corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func envNamed(c *corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func volumeNamed(pod *corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return &corev1.Volume{}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
