package tests

// The container deployment (Dockerfile and docker-compose.yml at the
// repository root) cannot be run here, so these tests load the files and
// check how the parts fit: what is built, what runs, which settings must
// agree between services, and that every path the containers rely on is
// provided by a mount whose host side exists in the repository.

import (
	"bufio"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/config"
)

const (
	composeRepoRoot   = ".."
	composeFilePath   = "../docker-compose.yml"
	composeDockerfile = "../Dockerfile"

	composeSetup   = "gatehouse-setup"
	composeWorker  = "gatehouse-worker"
	composeGateway = "gatehouse-gateway"

	composeAdminTools = "temporal-admin-tools"
)

// composeLoad loads docker-compose.yml the way `docker compose` does from the
// repository root, without the caller's environment (interpolation then uses
// the file's defaults).
func composeLoad(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFilePath},
		cli.WithWorkingDirectory(composeRepoRoot),
		cli.WithName("gatehouse"),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("load %s: %v", composeFilePath, err)
	}
	return p
}

func composeRepoAbs(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs(composeRepoRoot)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func composeService(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

// composeEnv is the value of an environment variable the service sets.
func composeEnv(t *testing.T, s types.ServiceConfig, key string) string {
	t.Helper()
	v, ok := s.Environment[key]
	if !ok || v == nil {
		t.Fatalf("%s: environment %s: got unset; want set", s.Name, key)
	}
	return *v
}

// composeHostPath maps a path inside the service's containers to the host
// path a bind mount provides it from (the deepest mount wins, as in the
// container). ok is false when no bind mount covers the path.
func composeHostPath(s types.ServiceConfig, containerPath string) (host string, ok bool) {
	containerPath = path.Clean(containerPath)
	best := -1
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		target := path.Clean(v.Target)
		if containerPath != target && !strings.HasPrefix(containerPath, strings.TrimSuffix(target, "/")+"/") {
			continue
		}
		if len(target) <= best {
			continue
		}
		best = len(target)
		host = filepath.Join(v.Source, filepath.FromSlash(strings.TrimPrefix(containerPath, target)))
	}
	return host, best >= 0
}

// composeInRepo fails unless host is an existing path inside the repository.
func composeInRepo(t *testing.T, what, host string) os.FileInfo {
	t.Helper()
	rel, err := filepath.Rel(composeRepoAbs(t), host)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		t.Errorf("%s: host path %s: got outside the repository; want inside it", what, host)
		return nil
	}
	fi, err := os.Stat(host)
	if err != nil {
		t.Errorf("%s: host path %s: got %v; want it to exist", what, rel, err)
		return nil
	}
	return fi
}

func TestComposeServices(t *testing.T) {
	p := composeLoad(t)
	got := p.ServiceNames()
	slices.Sort(got)
	want := []string{composeGateway, composeSetup, composeWorker, "gatehouse-db", "postgresql", composeAdminTools, "temporal", "temporal-ui"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("services: got %v; want %v", got, want)
	}
}

func TestComposeGatehouseServicesRunTheRepoImage(t *testing.T) {
	p := composeLoad(t)
	repo := composeRepoAbs(t)
	var namespaces []string
	for _, name := range []string{composeSetup, composeWorker, composeGateway} {
		s := composeService(t, p, name)
		sub := strings.TrimPrefix(name, "gatehouse-")
		if s.Build == nil {
			t.Errorf("%s: build: got none; want the repository's Dockerfile", name)
		} else {
			if got, want := s.Build.Context, repo; got != want {
				t.Errorf("%s: build context: got %s; want %s", name, got, want)
			}
			if got, want := s.Build.Dockerfile, "Dockerfile"; got != want {
				t.Errorf("%s: build dockerfile: got %s; want %s", name, got, want)
			}
		}
		// The verb first; setup takes flags after it.
		if got := []string(s.Command); len(got) == 0 || got[0] != sub {
			t.Errorf("%s: command: got %q; want %q first", name, got, sub)
		}
		if len(s.Entrypoint) != 0 {
			t.Errorf("%s: entrypoint: got %q; want the image's", name, s.Entrypoint)
		}
		addr := composeEnv(t, s, "TEMPORAL_ADDRESS")
		if got, want := addr, "temporal:7233"; got != want {
			t.Errorf("%s: TEMPORAL_ADDRESS: got %s; want %s", name, got, want)
		}
		if host, _, err := net.SplitHostPort(addr); err == nil {
			if _, ok := p.Services[host]; !ok {
				t.Errorf("%s: TEMPORAL_ADDRESS host: got %s; want a service of the project", name, host)
			}
		}
		namespaces = append(namespaces, composeEnv(t, s, "TEMPORAL_NAMESPACE"))
	}
	if got := slices.Compact(slices.Clone(namespaces)); len(got) != 1 {
		t.Errorf("TEMPORAL_NAMESPACE of setup, worker, gateway: got %q; want one namespace", namespaces)
	}
}

func TestComposeWorkerAndGatewayShareThePlanStore(t *testing.T) {
	p := composeLoad(t)
	worker, gateway := composeService(t, p, composeWorker), composeService(t, p, composeGateway)
	dataDir := composeEnv(t, worker, "GATEHOUSE_DATA_DIR")
	if got := composeEnv(t, gateway, "GATEHOUSE_DATA_DIR"); got != dataDir {
		t.Errorf("GATEHOUSE_DATA_DIR: got gateway %s, worker %s; want the same", got, dataDir)
	}
	if !path.IsAbs(dataDir) {
		t.Errorf("GATEHOUSE_DATA_DIR: got %s; want an absolute path", dataDir)
	}
	volumeAt := func(s types.ServiceConfig) string {
		for _, v := range s.Volumes {
			if path.Clean(v.Target) != path.Clean(dataDir) {
				continue
			}
			if v.Type != types.VolumeTypeVolume {
				t.Errorf("%s: mount at %s: got type %s; want a named volume", s.Name, dataDir, v.Type)
			}
			if v.ReadOnly {
				t.Errorf("%s: mount at %s: got read-only; want writable", s.Name, dataDir)
			}
			return v.Source
		}
		t.Errorf("%s: mount at GATEHOUSE_DATA_DIR %s: got none; want the shared volume", s.Name, dataDir)
		return ""
	}
	wv, gv := volumeAt(worker), volumeAt(gateway)
	if wv == "" || gv == "" {
		return
	}
	if wv != gv {
		t.Errorf("volume at %s: got worker %s, gateway %s; want the same", dataDir, wv, gv)
	}
	if _, ok := p.Volumes[wv]; !ok {
		t.Errorf("volume %s: got undeclared; want a top-level named volume", wv)
	}
	// The example apply script writes its log; the rest of the container is
	// read-only for it.
	if v, ok := worker.Environment["APPLY_LOG"]; ok && v != nil {
		if !strings.HasPrefix(path.Clean(*v), path.Clean(dataDir)+"/") {
			t.Errorf("worker APPLY_LOG: got %s; want a path under %s", *v, dataDir)
		}
	}
}

func TestComposeConfigIsMountedAndItsApplyCommandsExist(t *testing.T) {
	p := composeLoad(t)
	worker, gateway := composeService(t, p, composeWorker), composeService(t, p, composeGateway)
	cfgPath := composeEnv(t, worker, "GATEHOUSE_CONFIG")
	if got := composeEnv(t, gateway, "GATEHOUSE_CONFIG"); got != cfgPath {
		t.Errorf("GATEHOUSE_CONFIG: got gateway %s, worker %s; want the same", got, cfgPath)
	}
	if !path.IsAbs(cfgPath) {
		t.Fatalf("GATEHOUSE_CONFIG: got %s; want an absolute path", cfgPath)
	}

	// Every bind mount's host side exists in the repository.
	for _, s := range []types.ServiceConfig{worker, gateway} {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				composeInRepo(t, s.Name+" bind mount "+v.Target, v.Source)
			}
		}
	}

	var hostCfg string
	for _, s := range []types.ServiceConfig{worker, gateway} {
		host, ok := composeHostPath(s, cfgPath)
		if !ok {
			t.Fatalf("%s: GATEHOUSE_CONFIG %s: got no bind mount providing it; want one", s.Name, cfgPath)
		}
		if fi := composeInRepo(t, s.Name+" GATEHOUSE_CONFIG", host); fi != nil && !fi.Mode().IsRegular() {
			t.Errorf("%s: GATEHOUSE_CONFIG host path %s: got mode %s; want a regular file", s.Name, host, fi.Mode())
		}
		if hostCfg != "" && host != hostCfg {
			t.Errorf("config host path: got %s and %s; want the same file for worker and gateway", hostCfg, host)
		}
		hostCfg = host
	}
	if t.Failed() {
		return
	}

	if _, err := config.Load(hostCfg); err != nil {
		t.Fatalf("config.Load(%s): got %v; want nil", hostCfg, err)
	}
	// Parse keeps apply dirs as written, to resolve them as the container does:
	// against the config file's directory inside the container.
	data, err := os.ReadFile(hostCfg)
	if err != nil {
		t.Fatal(err)
	}
	// Parse reads policy files relative to the working directory: parse
	// from the config's directory, as the container's paths resolve.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(filepath.Dir(hostCfg)); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data)
	if cerr := os.Chdir(wd); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatalf("config.Parse(%s): got %v; want nil", hostCfg, err)
	}
	applies := 0
	for _, ws := range cfg.Workspaces {
		if ws.Apply == nil {
			continue
		}
		applies++
		dir := ws.Apply.Dir
		if !path.IsAbs(dir) {
			dir = path.Join(path.Dir(cfgPath), dir)
		}
		prog := ws.Apply.Command[0]
		if !strings.Contains(prog, "/") {
			t.Logf("workspace %s: apply command %q is looked up on PATH in the image; not checked", ws.Name, prog)
			continue
		}
		if !path.IsAbs(prog) {
			prog = path.Join(dir, prog)
		}
		host, ok := composeHostPath(worker, prog)
		if !ok {
			t.Errorf("workspace %s: apply command %s (in the container): got no bind mount providing it; want one", ws.Name, prog)
			continue
		}
		fi := composeInRepo(t, "workspace "+ws.Name+" apply command "+prog, host)
		if fi != nil && (!fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0) {
			t.Errorf("workspace %s: apply command %s: got mode %s; want an executable file", ws.Name, host, fi.Mode())
		}
	}
	if applies == 0 {
		t.Errorf("workspaces with an apply command: got 0; want at least 1 to check")
	}
}

// TestComposePublishedPorts: nothing is published on every interface
// (the Temporal frontend and Web UI have no authentication at all), and
// each published port reaches the port its service listens on.
func TestComposePublishedPorts(t *testing.T) {
	p := composeLoad(t)
	for _, s := range p.Services {
		for _, pc := range s.Ports {
			if pc.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %s→%d: got host address %q; want 127.0.0.1 (this host only)", s.Name, pc.Published, pc.Target, pc.HostIP)
			}
		}
	}
	published := func(s types.ServiceConfig, port string) (uint32, bool) {
		for _, pc := range s.Ports {
			if pc.Published == port {
				return pc.Target, true
			}
		}
		return 0, false
	}

	gateway := composeService(t, p, composeGateway)
	target, ok := published(gateway, "8080")
	if !ok {
		t.Errorf("%s: published ports: got %+v; want 8080", composeGateway, gateway.Ports)
	}
	listen := composeEnv(t, gateway, "GATEHOUSE_HTTP_ADDR")
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Errorf("%s: GATEHOUSE_HTTP_ADDR %q: %v", composeGateway, listen, err)
	} else {
		if host != "" && host != "0.0.0.0" && host != "::" {
			t.Errorf("%s: GATEHOUSE_HTTP_ADDR host: got %q; want all interfaces", composeGateway, host)
		}
		if port != "8080" {
			t.Errorf("%s: GATEHOUSE_HTTP_ADDR port: got %s; want 8080", composeGateway, port)
		}
	}
	if ok && target != 8080 {
		t.Errorf("%s: port 8080: got container port %d; want 8080, where the gateway listens", composeGateway, target)
	}

	ui := composeService(t, p, "temporal-ui")
	if target, ok := published(ui, "8233"); !ok {
		t.Errorf("temporal-ui: published ports: got %+v; want 8233", ui.Ports)
	} else if target != 8080 {
		t.Errorf("temporal-ui: port 8233: got container port %d; want 8080", target)
	}
	temporal := composeService(t, p, "temporal")
	if target, ok := published(temporal, "7233"); !ok || target != 7233 {
		t.Errorf("temporal: published ports: got %+v; want 7233 to 7233", temporal.Ports)
	}
	if got := composeEnv(t, temporal, "BIND_ON_IP"); got != "0.0.0.0" {
		t.Errorf("temporal: BIND_ON_IP: got %s; want 0.0.0.0 (its default, 127.0.0.1, is unreachable from other containers)", got)
	}
}

func TestComposeStartupOrder(t *testing.T) {
	p := composeLoad(t)
	dependsOn := func(service, dep, condition string) {
		t.Helper()
		s := composeService(t, p, service)
		d, ok := s.DependsOn[dep]
		if !ok {
			t.Errorf("%s: depends_on %s: got none; want condition %s", service, dep, condition)
			return
		}
		if d.Condition != condition {
			t.Errorf("%s: depends_on %s: got condition %s; want %s", service, dep, d.Condition, condition)
		}
	}
	dependsOn(composeAdminTools, "postgresql", types.ServiceConditionHealthy)
	dependsOn("temporal", composeAdminTools, types.ServiceConditionCompletedSuccessfully)
	dependsOn("temporal", "postgresql", types.ServiceConditionHealthy)
	dependsOn("temporal-ui", "temporal", types.ServiceConditionHealthy)
	dependsOn(composeSetup, "temporal", types.ServiceConditionHealthy)
	dependsOn(composeWorker, composeSetup, types.ServiceConditionCompletedSuccessfully)
	dependsOn(composeGateway, composeSetup, types.ServiceConditionCompletedSuccessfully)
	dependsOn(composeWorker, "gatehouse-db", types.ServiceConditionHealthy)
	dependsOn(composeGateway, "gatehouse-db", types.ServiceConditionHealthy)

	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			switch d.Condition {
			case types.ServiceConditionHealthy:
				// Waiting for "healthy" on a service without a healthcheck
				// never ends.
				hc := p.Services[dep].HealthCheck
				if hc == nil || hc.Disable || len(hc.Test) == 0 {
					t.Errorf("%s: depends_on %s healthy: got no healthcheck on %s; want one", s.Name, dep, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
				// A one-shot that is restarted after a failure has still
				// failed once, which aborts `up` for its dependents: it
				// must retry inside (gatehouse setup --wait) and be let
				// exit.
				if r := p.Services[dep].Restart; r != "" && r != types.RestartPolicyNo {
					t.Errorf("%s: restart: got %s; want no (a one-shot that %s waits for)", dep, r, s.Name)
				}
			}
		}
	}
	setup := []string(composeService(t, p, composeSetup).Command)
	i := slices.Index(setup, "--wait")
	if i < 0 || i+1 >= len(setup) {
		t.Fatalf("%s: command %q: got no --wait; want setup to retry while Temporal starts", composeSetup, setup)
	}
	if d, err := time.ParseDuration(setup[i+1]); err != nil || d < time.Minute {
		t.Errorf("%s: --wait %s: got %v, %v; want a minute or more", composeSetup, setup[i+1], d, err)
	}
}

// TestComposeHealthchecks: every long-running service has a healthcheck
// its image can run, and the gatehouse ones ask the address the process
// serves.
func TestComposeHealthchecks(t *testing.T) {
	p := composeLoad(t)
	oneShots := []string{composeAdminTools, composeSetup}
	for _, s := range p.Services {
		if slices.Contains(oneShots, s.Name) {
			continue
		}
		if s.Restart != types.RestartPolicyUnlessStopped {
			t.Errorf("%s: restart: got %q; want unless-stopped for a long-running service", s.Name, s.Restart)
		}
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
			t.Errorf("%s: healthcheck: got %+v; want an exec-form (CMD) test", s.Name, hc)
			continue
		}
		if hc.Interval == nil || hc.Retries == nil || *hc.Retries == 0 {
			t.Errorf("%s: healthcheck: want an interval and retries", s.Name)
		}
		prog := hc.Test[1]
		switch {
		case strings.HasPrefix(s.Image, "postgres:"):
			// Over TCP: the image's first-start init server listens on the
			// Unix socket only and must not count as ready.
			if prog != "pg_isready" || !slices.Contains(hc.Test, "-h") {
				t.Errorf("%s: healthcheck %q; want pg_isready -h 127.0.0.1", s.Name, hc.Test)
			}
		case s.Name == "temporal":
			if want := []string{"CMD", "nc", "-z", "127.0.0.1", "7233"}; !slices.Equal(hc.Test, want) {
				t.Errorf("temporal: healthcheck %q; want %q (the image has busybox, no temporal CLI)", hc.Test, want)
			}
		case s.Name == "temporal-ui":
			if prog != "wget" || !strings.HasSuffix(hc.Test[len(hc.Test)-1], ":8080/healthz") {
				t.Errorf("temporal-ui: healthcheck %q; want wget of :8080/healthz", hc.Test)
			}
		case s.Build != nil:
			// gatehouse healthcheck URL, at the port the process serves.
			if len(hc.Test) != 4 || prog != "gatehouse" || hc.Test[2] != "healthcheck" {
				t.Errorf("%s: healthcheck %q; want gatehouse healthcheck URL", s.Name, hc.Test)
				continue
			}
			u, err := url.Parse(hc.Test[3])
			if err != nil {
				t.Errorf("%s: healthcheck URL %q: %v", s.Name, hc.Test[3], err)
				continue
			}
			var listen, wantPath string
			switch s.Name {
			case composeGateway:
				listen, wantPath = composeEnv(t, s, "GATEHOUSE_HTTP_ADDR"), "/readyz"
			case composeWorker:
				listen, wantPath = composeEnv(t, s, "GATEHOUSE_METRICS_ADDR"), "/metrics"
			default:
				t.Errorf("%s: a gatehouse service this test does not know", s.Name)
				continue
			}
			_, port, err := net.SplitHostPort(listen)
			if err != nil || u.Port() != port || u.Hostname() != "127.0.0.1" || u.Path != wantPath {
				t.Errorf("%s: healthcheck URL %s against listen address %s: want http://127.0.0.1:<its port>%s", s.Name, u, listen, wantPath)
			}
		default:
			t.Errorf("%s: a service this test does not know; add what its healthcheck must be", s.Name)
		}
	}
	// The worker stops gracefully only if compose waits longer than it
	// gives running applies.
	worker := composeService(t, p, composeWorker)
	stop, err := time.ParseDuration(composeEnv(t, worker, "GATEHOUSE_STOP_TIMEOUT"))
	if err != nil || worker.StopGracePeriod == nil || time.Duration(*worker.StopGracePeriod) <= stop {
		t.Errorf("%s: stop_grace_period %v, GATEHOUSE_STOP_TIMEOUT %s (%v); want the grace period longer", composeWorker, worker.StopGracePeriod, stop, err)
	}
}

// composeInstruction is one Dockerfile instruction, continuation lines joined.
type composeInstruction struct {
	cmd  string // upper case
	args string
}

func composeParseDockerfile(t *testing.T) [][]composeInstruction {
	t.Helper()
	f, err := os.Open(composeDockerfile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages [][]composeInstruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := composeInstruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %s before the first FROM", in.cmd)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") { // comments, also inside continuations
			continue
		}
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	flush()
	return stages
}

func TestDockerfile(t *testing.T) {
	stages := composeParseDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("Dockerfile stages: got %d; want a build stage and a runtime stage", len(stages))
	}
	final := stages[len(stages)-1]
	builderName := ""
	for _, in := range final {
		if in.cmd == "COPY" && strings.Contains(in.args, "--from=") && strings.HasSuffix(in.args, " /usr/local/bin/gatehouse") {
			builderName = strings.Fields(strings.SplitN(in.args, "--from=", 2)[1])[0]
		}
	}
	if builderName == "" {
		t.Fatalf("final stage: got no COPY --from=... /usr/local/bin/gatehouse; want the built binary copied there")
	}
	var build []composeInstruction
	for _, st := range stages[:len(stages)-1] {
		if f := strings.Fields(st[0].args); len(f) == 3 && strings.EqualFold(f[1], "AS") && f[2] == builderName {
			build = st
		}
	}
	if build == nil {
		t.Fatalf("build stage %q: got none; want the stage the binary is copied from", builderName)
	}

	// The builder's Go is the one go.mod asks for (GOTOOLCHAIN=local would
	// otherwise fail the build).
	gomod, err := os.ReadFile(filepath.Join(composeRepoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := ""
	for _, l := range strings.Split(string(gomod), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "go "); ok {
			goVersion = strings.TrimSpace(v)
		}
	}
	if img := strings.Fields(build[0].args)[0]; !strings.HasPrefix(img, "golang:"+goVersion+"-") && img != "golang:"+goVersion {
		t.Errorf("build stage image: got %s; want golang:%s (go.mod's go directive)", img, goVersion)
	}

	download, copySource, buildAt := -1, -1, -1
	for i, in := range build {
		switch {
		case in.cmd == "RUN" && strings.Contains(in.args, "go mod download") && download < 0:
			download = i
		case in.cmd == "COPY" && (in.args == ". ." || strings.HasPrefix(in.args, ". ")) && copySource < 0:
			copySource = i
		case in.cmd == "RUN" && strings.Contains(in.args, "go build"):
			buildAt = i
			for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-o /gatehouse", "./cmd/gatehouse"} {
				if !strings.Contains(in.args, want) {
					t.Errorf("build stage go build: got %q; want it to contain %q", in.args, want)
				}
			}
		}
	}
	if download < 0 || copySource < 0 || buildAt < 0 || !(download < copySource && copySource < buildAt) {
		t.Errorf("build stage order: got go mod download at %d, COPY . at %d, go build at %d; want them all, in that order", download, copySource, buildAt)
	}

	// Runtime stage: a shell for the apply script, the examples, a non-root
	// user, and gatehouse as the entrypoint.
	base := strings.Fields(final[0].args)[0]
	if base == "scratch" || strings.Contains(base, "distroless") {
		t.Errorf("runtime image: got %s; want one with /bin/sh for apply scripts", base)
	}
	script, err := os.ReadFile(filepath.Join(composeRepoRoot, "examples", "apply.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := strings.Cut(string(script), "\n"); got != "#!/bin/sh" {
		t.Errorf("examples/apply.sh interpreter: got %q; want #!/bin/sh, which the runtime image provides", got)
	}
	var user, entrypoint string
	copiesExamples := false
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "COPY":
			if f := strings.Fields(in.args); len(f) == 2 && path.Clean(f[0]) == "examples" && path.Clean(f[1]) == "/etc/gatehouse/examples" {
				copiesExamples = true
			}
		}
	}
	name, _, _ := strings.Cut(user, ":")
	if name == "" || name == "root" || name == "0" {
		t.Errorf("runtime stage USER: got %q; want a non-root user", user)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entrypoint), &ep); err != nil || !slices.Equal(ep, []string{"gatehouse"}) {
		t.Errorf(`runtime stage ENTRYPOINT: got %s; want ["gatehouse"]`, entrypoint)
	}
	if !copiesExamples {
		t.Errorf("runtime stage: got no COPY examples/ /etc/gatehouse/examples/; want the examples in the image")
	}
}

// TestComposeKeepsTheAuditTrailAndSetsRetention: worker and gateway share the
// audit trail's PostgreSQL (its own service, its own volume, apart from
// Temporal's), and gatehouse setup creates the namespace with the retention
// README states.
func TestComposeKeepsTheAuditTrailAndSetsRetention(t *testing.T) {
	p := composeLoad(t)
	worker, gateway := composeService(t, p, composeWorker), composeService(t, p, composeGateway)
	dsn := composeEnv(t, worker, app.DatabaseEnv)
	if got := composeEnv(t, gateway, app.DatabaseEnv); got != dsn {
		t.Errorf("%s: got gateway %s, worker %s; want the same", app.DatabaseEnv, got, dsn)
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme != "postgres" {
		t.Fatalf("%s %q: want a postgres:// URL", app.DatabaseEnv, dsn)
	}
	db := composeService(t, p, u.Hostname())
	if !strings.HasPrefix(db.Image, "postgres:") || composeEnv(t, db, "POSTGRES_DB") != strings.TrimPrefix(u.Path, "/") ||
		composeEnv(t, db, "POSTGRES_USER") != u.User.Username() {
		t.Errorf("%s: image %s, db %s, user %s; want PostgreSQL with the database and user of %s", db.Name, db.Image,
			composeEnv(t, db, "POSTGRES_DB"), composeEnv(t, db, "POSTGRES_USER"), dsn)
	}
	if pw, _ := u.User.Password(); pw != composeEnv(t, db, "POSTGRES_PASSWORD") {
		t.Errorf("the audit database's password differs between %s and %s", app.DatabaseEnv, db.Name)
	}
	named := false
	for _, v := range db.Volumes {
		named = named || (v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/postgresql/data")
	}
	if !named {
		t.Errorf("%s: want its data in a named volume", db.Name)
	}
	if u.Hostname() == "postgresql" {
		t.Errorf("%s: got Temporal's PostgreSQL; want the audit trail's own", app.DatabaseEnv)
	}
	setup := []string(composeService(t, p, composeSetup).Command)
	i := slices.Index(setup, "--retention")
	if i < 0 || i+1 >= len(setup) || setup[i+1] != "720h" {
		t.Errorf("%s: command %q; want --retention 720h", composeSetup, setup)
	} else if d, _ := time.ParseDuration(setup[i+1]); d != app.DefaultRetention {
		t.Errorf("%s: --retention %s; want app.DefaultRetention %s, which README states", composeSetup, d, app.DefaultRetention)
	}
}

// composeGoModVersion is the version go.mod requires of module.
func composeGoModVersion(t *testing.T, module string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(composeRepoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == module {
			return f[1]
		}
	}
	t.Fatalf("go.mod requires no %s", module)
	return ""
}

// TestComposeTemporalImagesMatchGoMod: the cluster runs the server version
// Gatehouse is built and tested against (go.mod's go.temporal.io/server,
// which temporaltest and gatehouse dev embed), its schema tools the same
// version, and the Web UI the version gatehouse dev embeds.
func TestComposeTemporalImagesMatchGoMod(t *testing.T) {
	p := composeLoad(t)
	server := strings.TrimPrefix(composeGoModVersion(t, "go.temporal.io/server"), "v")
	ui := strings.TrimPrefix(composeGoModVersion(t, "github.com/temporalio/ui-server/v2"), "v")
	for name, want := range map[string]string{
		"temporal":        "temporalio/server:" + server,
		composeAdminTools: "temporalio/admin-tools:" + server,
		"temporal-ui":     "temporalio/ui:" + ui,
	} {
		if got := composeService(t, p, name).Image; got != want {
			t.Errorf("%s: image %s; want %s", name, got, want)
		}
	}
	for _, name := range []string{"postgresql", "gatehouse-db"} {
		if img := composeService(t, p, name).Image; !strings.HasPrefix(img, "postgres:") || img == "postgres:latest" {
			t.Errorf("%s: image %s; want a pinned postgres major", name, img)
		}
	}
}

// composeServerModule is the directory of go.mod's go.temporal.io/server in
// the module cache: its config template and schema are what the images of
// that version ship.
func composeServerModule(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "go.temporal.io", "server@"+composeGoModVersion(t, "go.temporal.io/server"))
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("go.temporal.io/server not in the module cache (%v): go mod download it", err)
	}
	return dir
}

// TestComposeTemporalServerEnv: temporalio/server is configured only by
// environment, through the template embedded in temporal-server; every
// variable compose sets is one the template reads, and they point at the
// postgresql service with its user and password, and at a dynamic config
// file the mount provides.
func TestComposeTemporalServerEnv(t *testing.T) {
	p := composeLoad(t)
	temporal, pg := composeService(t, p, "temporal"), composeService(t, p, "postgresql")
	tmpl, err := os.ReadFile(filepath.Join(composeServerModule(t), "common", "config", "config_template_embedded.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for key := range temporal.Environment {
		if !strings.Contains(string(tmpl), `(env "`+key+`")`) && key != "BIND_ON_IP" { // BIND_ON_IP is read by the entrypoint too
			t.Errorf("temporal: environment %s: the server's config template reads no such variable", key)
		}
	}
	for key, want := range map[string]string{
		"DB":             "postgres12",
		"DB_PORT":        "5432",
		"POSTGRES_SEEDS": pg.Name,
		"POSTGRES_USER":  composeEnv(t, pg, "POSTGRES_USER"),
		"POSTGRES_PWD":   composeEnv(t, pg, "POSTGRES_PASSWORD"),
	} {
		if got := composeEnv(t, temporal, key); got != want {
			t.Errorf("temporal: %s: got %q; want %q", key, got, want)
		}
	}
	// Temporal's state outlives its containers: a named volume, declared.
	kept := false
	for _, v := range pg.Volumes {
		_, declared := p.Volumes[v.Source]
		kept = kept || (v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/postgresql/data" && declared)
	}
	if !kept {
		t.Errorf("postgresql: volumes %+v; want a declared named volume at /var/lib/postgresql/data", pg.Volumes)
	}
	dc := composeEnv(t, temporal, "DYNAMIC_CONFIG_FILE_PATH")
	host, ok := composeHostPath(temporal, dc)
	if !ok {
		t.Fatalf("temporal: DYNAMIC_CONFIG_FILE_PATH %s: got no bind mount providing it; want one (the server refuses to start without)", dc)
	}
	if fi := composeInRepo(t, "temporal dynamic config", host); fi != nil {
		var v map[string]any
		data, _ := os.ReadFile(host)
		if err := yaml.Unmarshal(data, &v); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("temporal dynamic config %s: %v; want a YAML file", host, err)
		}
	}
}

// TestComposeAdminToolsSetsUpBothDatabases runs the admin-tools job's
// command with a stand-in temporal-sql-tool that records its arguments: it
// must create both databases and set up and update each one's schema from
// the directory of that version's schema (in the server module, which the
// image copies to /etc/temporal/schema), with the connection the postgresql
// service offers. Running it twice makes the same calls, each of which
// temporal-sql-tool treats as done when it is.
func TestComposeAdminToolsSetsUpBothDatabases(t *testing.T) {
	p := composeLoad(t)
	job, pg := composeService(t, p, composeAdminTools), composeService(t, p, "postgresql")
	for key, want := range map[string]string{
		"SQL_PLUGIN":   "postgres12",
		"SQL_HOST":     pg.Name,
		"SQL_PORT":     "5432",
		"SQL_USER":     composeEnv(t, pg, "POSTGRES_USER"),
		"SQL_PASSWORD": composeEnv(t, pg, "POSTGRES_PASSWORD"),
	} {
		if got := composeEnv(t, job, key); got != want {
			t.Errorf("%s: %s: got %q; want %q", composeAdminTools, key, got, want)
		}
	}
	if !slices.Equal([]string(job.Entrypoint), []string{"/bin/sh", "-ec"}) || len(job.Command) != 1 {
		t.Fatalf("%s: entrypoint %q command %q; want /bin/sh -ec and one script", composeAdminTools, job.Entrypoint, job.Command)
	}
	bin := t.TempDir()
	log := filepath.Join(bin, "calls")
	fake := "#!/bin/sh\necho \"$*\" >> " + log + "\n"
	if err := os.WriteFile(filepath.Join(bin, "temporal-sql-tool"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-ec", job.Command[0])
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s script: %v\n%s", composeAdminTools, err, out)
	}
	calls, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	const schemaRoot = "/etc/temporal/schema/"
	var want []string
	for _, db := range []struct{ name, schema string }{{"temporal", "temporal"}, {"temporal_visibility", "visibility"}} {
		want = append(want,
			"--db "+db.name+" create-database",
			"--db "+db.name+" setup-schema -v 0.0",
			"--db "+db.name+" update-schema -d "+schemaRoot+"postgresql/v12/"+db.schema+"/versioned")
	}
	got := strings.Split(strings.TrimSpace(string(calls)), "\n")
	if !slices.Equal(got, want) {
		t.Fatalf("temporal-sql-tool calls:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	mod := composeServerModule(t)
	for _, c := range got {
		if _, dir, ok := strings.Cut(c, " -d "+schemaRoot); ok {
			entries, err := os.ReadDir(filepath.Join(mod, "schema", filepath.FromSlash(dir)))
			if err != nil || len(entries) == 0 {
				t.Errorf("schema dir %s%s: not in go.temporal.io/server's schema/ (%v)", schemaRoot, dir, err)
			}
		}
	}
}

// TestComposeConfigHasNoTokens: the config compose mounts holds no plain
// token (users get theirs from `gatehouse token new`, which writes only the
// digest), and neither does the image's default config.
func TestComposeConfigHasNoTokens(t *testing.T) {
	p := composeLoad(t)
	worker := composeService(t, p, composeWorker)
	cfgPath := composeEnv(t, worker, "GATEHOUSE_CONFIG")
	host, ok := composeHostPath(worker, cfgPath)
	if !ok {
		t.Fatalf("GATEHOUSE_CONFIG %s: got no bind mount providing it", cfgPath)
	}
	check := func(what, file string) {
		t.Helper()
		cfg, err := config.Load(file)
		if err != nil {
			t.Fatalf("%s: config.Load(%s): %v", what, file, err)
		}
		for _, u := range cfg.Users {
			if u.Token != "" {
				t.Errorf("%s: user %s has a plain token: want token_sha256 only", what, u.ID)
			}
		}
		data, _ := os.ReadFile(file)
		for i, l := range strings.Split(string(data), "\n") {
			if f := strings.Fields(l); len(f) > 0 && (f[0] == "token:" || (f[0] == "-" && len(f) > 1 && f[1] == "token:")) {
				t.Errorf("%s:%d: a plain token: line", file, i+1)
			}
		}
	}
	check("compose config", host)
	// The Dockerfile's GATEHOUSE_CONFIG is in the image's copy of examples/.
	for _, st := range composeParseDockerfile(t) {
		for _, in := range st {
			if in.cmd != "ENV" {
				continue
			}
			for _, kv := range strings.Fields(in.args) {
				if v, ok := strings.CutPrefix(kv, "GATEHOUSE_CONFIG="); ok {
					rel, ok := strings.CutPrefix(v, "/etc/gatehouse/")
					if !ok {
						t.Fatalf("Dockerfile GATEHOUSE_CONFIG %s: want a file of the examples/ copied to /etc/gatehouse/examples", v)
					}
					check("image default config", filepath.Join(composeRepoRoot, filepath.FromSlash(rel)))
				}
			}
		}
	}
}

// TestDockerfileTofu: the image carries OpenTofu at the version the tests
// pin (.ci/tofu.sh), built the way that script builds it, on PATH.
func TestDockerfileTofu(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(composeRepoRoot, ".ci", "tofu.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`version="\$\{TOFU_VERSION:-(v[0-9.]+)\}"`).FindSubmatch(script)
	if m == nil {
		t.Fatal(".ci/tofu.sh: no version=\"${TOFU_VERSION:-v…}\" line")
	}
	pinned := string(m[1])
	stages := composeParseDockerfile(t)
	final := stages[len(stages)-1]
	from := ""
	for _, in := range final {
		if f := strings.Fields(in.args); in.cmd == "COPY" && len(f) == 3 && strings.HasPrefix(f[0], "--from=") && f[2] == "/usr/local/bin/tofu" {
			from = strings.TrimPrefix(f[0], "--from=")
		}
	}
	if from == "" {
		t.Fatal("final stage: got no COPY --from=STAGE … /usr/local/bin/tofu; want tofu on the image's PATH")
	}
	var stage []composeInstruction
	for _, st := range stages {
		if f := strings.Fields(st[0].args); len(f) == 3 && strings.EqualFold(f[1], "AS") && f[2] == from {
			stage = st
		}
	}
	if stage == nil {
		t.Fatalf("stage %s: not in the Dockerfile", from)
	}
	var arg, build string
	for _, in := range stage {
		switch {
		case in.cmd == "ARG" && strings.HasPrefix(in.args, "TOFU_VERSION="):
			arg = strings.TrimPrefix(in.args, "TOFU_VERSION=")
		case in.cmd == "RUN" && strings.Contains(in.args, "go build"):
			build = in.args
		}
	}
	if arg != pinned {
		t.Errorf("Dockerfile ARG TOFU_VERSION: got %q; want %s, .ci/tofu.sh's", arg, pinned)
	}
	for _, want := range []string{
		`github.com/opentofu/opentofu@${TOFU_VERSION}`,
		"-X github.com/opentofu/opentofu/version.dev=no", // as .ci/tofu.sh: a release build, not "dev"
		"./cmd/tofu",
		"tofu version", // the build fails unless the binary runs
	} {
		if !strings.Contains(build, want) {
			t.Errorf("tofu stage build: want %q in %q", want, build)
		}
	}
	if !strings.Contains(string(script), "version.dev=no") {
		t.Error(".ci/tofu.sh no longer builds with version.dev=no: update the Dockerfile's build with it")
	}
}

// TestComposeSecretsStayOutOfImages: .env, where README's quick start puts
// the signing key and the passwords, is neither committed nor sent to the
// image build (whose first stage copies the whole context).
func TestComposeSecretsStayOutOfImages(t *testing.T) {
	for _, f := range []string{".dockerignore", ".gitignore"} {
		data, err := os.ReadFile(filepath.Join(composeRepoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, l := range strings.Split(string(data), "\n") {
			l = strings.TrimSpace(l)
			found = found || l == ".env" || l == "/.env"
		}
		if !found {
			t.Errorf("%s: no .env line; want the compose secrets excluded", f)
		}
	}
}
