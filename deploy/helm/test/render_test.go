package chart

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

const chartDir = "../gatehouse"

// objects is one render of the chart, decoded.
type objects struct {
	all   []any
	notes string

	deployment *appsv1.Deployment
	service    *corev1.Service
	configMap  *corev1.ConfigMap
	pdb        *policyv1.PodDisruptionBudget
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	netpol     *networkingv1.NetworkPolicy
	pvc        *corev1.PersistentVolumeClaim
	sa         *corev1.ServiceAccount
}

// kinds are the objects the chart may render, each with the only
// apiVersion it may use.
var kinds = map[string]struct {
	gv  schema.GroupVersion
	new func() any
}{
	"Deployment":              {appsv1.SchemeGroupVersion, func() any { return new(appsv1.Deployment) }},
	"Service":                 {corev1.SchemeGroupVersion, func() any { return new(corev1.Service) }},
	"ConfigMap":               {corev1.SchemeGroupVersion, func() any { return new(corev1.ConfigMap) }},
	"ServiceAccount":          {corev1.SchemeGroupVersion, func() any { return new(corev1.ServiceAccount) }},
	"PersistentVolumeClaim":   {corev1.SchemeGroupVersion, func() any { return new(corev1.PersistentVolumeClaim) }},
	"PodDisruptionBudget":     {policyv1.SchemeGroupVersion, func() any { return new(policyv1.PodDisruptionBudget) }},
	"HorizontalPodAutoscaler": {autoscalingv2.SchemeGroupVersion, func() any { return new(autoscalingv2.HorizontalPodAutoscaler) }},
	"NetworkPolicy":           {networkingv1.SchemeGroupVersion, func() any { return new(networkingv1.NetworkPolicy) }},
}

// renderChart renders the chart as `helm install gh ../gatehouse -f values`
// would, without a cluster: the values are coalesced with the chart's and
// checked against values.schema.json first. It returns the template output
// by file name.
func renderChart(values string) (map[string]string, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	user, err := chartutil.ReadValues([]byte(values))
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	vals, err := chartutil.ToRenderValues(ch, user, chartutil.ReleaseOptions{
		Name: "gh", Namespace: "web", Revision: 1, IsInstall: true,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, vals)
}

// render renders the chart with values and decodes every object strictly:
// a field the Kubernetes type does not have fails the test.
func render(t *testing.T, values string) *objects {
	t.Helper()
	files, err := renderChart(values)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	o := new(objects)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			o.notes = files[name]
			continue
		}
		if !strings.HasSuffix(name, ".yaml") {
			if strings.TrimSpace(files[name]) != "" && !strings.HasPrefix(filepath.Base(name), "_") {
				t.Errorf("%s: unexpected rendered file", name)
			}
			continue
		}
		for i, doc := range strings.Split(files[name], "\n---") {
			if strings.TrimSpace(doc) == "" || isComments(doc) {
				continue
			}
			o.decode(t, fmt.Sprintf("%s#%d", name, i), []byte(doc))
		}
	}
	if o.deployment == nil || o.service == nil || o.configMap == nil {
		t.Fatal("the chart must render a Deployment, a Service and a ConfigMap")
	}
	return o
}

func isComments(doc string) bool {
	for line := range strings.Lines(doc) {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

func (o *objects) decode(t *testing.T, where string, doc []byte) {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatalf("%s: %v\n%s", where, err, doc)
	}
	k, ok := kinds[tm.Kind]
	if !ok {
		t.Fatalf("%s: kind %q is not one the chart may render", where, tm.Kind)
	}
	if tm.APIVersion != k.gv.String() {
		t.Errorf("%s: %s has apiVersion %q; want %q", where, tm.Kind, tm.APIVersion, k.gv)
	}
	obj := k.new()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s: strict decode into %T: %v\n%s", where, obj, err, doc)
	}
	meta := obj.(metav1.Object)
	if meta.GetName() == "" || len(meta.GetName()) > 63 {
		t.Errorf("%s: name %q", where, meta.GetName())
	}
	if meta.GetLabels()["app.kubernetes.io/instance"] != "gh" {
		t.Errorf("%s: labels %v lack the release", where, meta.GetLabels())
	}
	for _, prev := range o.all {
		if pm := prev.(metav1.Object); fmt.Sprintf("%T", prev) == fmt.Sprintf("%T", obj) {
			t.Fatalf("%s: a second %s (%s and %s)", where, tm.Kind, pm.GetName(), meta.GetName())
		}
	}
	o.all = append(o.all, obj)
	switch v := obj.(type) {
	case *appsv1.Deployment:
		o.deployment = v
	case *corev1.Service:
		o.service = v
	case *corev1.ConfigMap:
		o.configMap = v
	case *policyv1.PodDisruptionBudget:
		o.pdb = v
	case *autoscalingv2.HorizontalPodAutoscaler:
		o.hpa = v
	case *networkingv1.NetworkPolicy:
		o.netpol = v
	case *corev1.PersistentVolumeClaim:
		o.pvc = v
	case *corev1.ServiceAccount:
		o.sa = v
	}
}

// container returns the gateway container.
func (o *objects) container(t *testing.T) *corev1.Container {
	t.Helper()
	cs := o.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "gatehouse" {
		t.Fatalf("containers: %+v; want one named gatehouse", cs)
	}
	return &cs[0]
}
