/*
Copyright 2026 The loan-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command images builds the three images (controller, gateway, bank simulator) without a
// container engine, with go-containerregistry: each is a static Go binary at /app on an empty
// base, run as the non-root user 65532, with the OCI labels source, version and revision. Every
// file time is the commit's time and the binaries are built with -trimpath and no build id, so
// that the same commit gives the same digests on every build.
//
// `make images` writes an OCI image layout per program under bin/images/<program>; with -push
// it also pushes each image to <registry>/<name>:<tag> with the credentials of
// ~/.docker/config.json (docker login, or crane auth login). The Dockerfile builds the same
// images where a container engine exists.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// program is one image: the package under cmd/ and the image's name in the registry.
type program struct{ pkg, image string }

// programs are the images by the name -programs takes (the folder under cmd/, as the
// Dockerfile's PROGRAM).
var programs = map[string]program{
	"controller": {"./cmd/controller", "loan-controller"},
	"gateway":    {"./cmd/gateway", "loan-gateway"},
	"bank-sim":   {"./cmd/bank-sim", "bank-sim"},
}

// nonRoot is the user and group the programs run as, distroless's "nonroot".
const nonRoot = "65532"

type options struct {
	out, registry, tag, version, revision, source, arch string
	only                                                string
	created                                             time.Time
	push                                                bool
}

func main() {
	o, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func parseOptions(args []string) (options, error) {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	var o options
	var epoch int64
	fs.StringVar(&o.out, "out", "bin/images", "Folder of the OCI image layouts, one per program.")
	fs.StringVar(&o.registry, "registry", "ghcr.io/lendo", "Registry and owner the images are named (and pushed) under.")
	fs.StringVar(&o.tag, "tag", "latest", "Tag of the images.")
	fs.StringVar(&o.version, "version", "dev", "org.opencontainers.image.version.")
	fs.StringVar(&o.revision, "revision", "", "org.opencontainers.image.revision: the commit (required).")
	fs.StringVar(&o.source, "source", "https://github.com/lendo/loan-operator", "org.opencontainers.image.source.")
	fs.StringVar(&o.arch, "arch", runtime.GOARCH, "GOARCH of the binaries (linux only).")
	fs.StringVar(&o.only, "programs", "controller,gateway,bank-sim", "Which images, comma-separated.")
	fs.Int64Var(&epoch, "created", 0, "Image creation and file time, in Unix seconds: the commit's time, for reproducible digests.")
	fs.BoolVar(&o.push, "push", false, "Also push each image to <registry>/<name>:<tag>.")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.revision == "" {
		return o, errors.New("-revision is required (the commit the images are built from)")
	}
	o.created = time.Unix(epoch, 0).UTC()
	for p := range strings.SplitSeq(o.only, ",") {
		if _, ok := programs[p]; !ok {
			return o, fmt.Errorf("unknown program %q (controller, gateway or bank-sim)", p)
		}
	}
	return o, nil
}

func run(o options) error {
	for p := range strings.SplitSeq(o.only, ",") {
		img, err := buildImage(o, programs[p])
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		ref, err := name.NewTag(o.registry + "/" + programs[p].image + ":" + o.tag)
		if err != nil {
			return err
		}
		digest, err := writeLayout(filepath.Join(o.out, p), img, ref)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		fmt.Printf("%s\t%s@%s\t%s\n", p, ref, digest, filepath.Join(o.out, p))
		if o.push {
			if err := remote.Write(ref, img, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
				return fmt.Errorf("pushing %s: %w", ref, err)
			}
			fmt.Printf("%s\tpushed %s@%s\n", p, ref, digest)
		}
	}
	return nil
}

// buildImage builds the program and wraps it into an image of one layer.
func buildImage(o options, p program) (v1.Image, error) {
	binary, err := goBuild(p.pkg, o.arch)
	if err != nil {
		return nil, err
	}
	layerTar, err := rootfs(binary, o.created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Created = "linux", o.arch, v1.Time{Time: o.created}
	cfg.Config = v1.Config{
		User:       nonRoot + ":" + nonRoot,
		Entrypoint: []string{"/app"},
		WorkingDir: "/",
		Labels: map[string]string{
			"org.opencontainers.image.source":   o.source,
			"org.opencontainers.image.version":  o.version,
			"org.opencontainers.image.revision": o.revision,
			"org.opencontainers.image.title":    p.image,
			"org.opencontainers.image.licenses": "Apache-2.0",
		},
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, v1.Time{Time: o.created})
}

// goBuild builds a static binary (no cgo) without paths or build id in it, so that it is the
// same byte for byte from the same sources and toolchain.
func goBuild(pkg, arch string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "images-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	out := filepath.Join(dir, "app")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s: %w", pkg, err)
	}
	return os.ReadFile(out)
}

// rootfs is the image's only layer: the program at /app and the user and group files that name
// 65532 "nonroot". Nothing is read from the building machine (the controller carries its own CA
// roots for HTTPS to a real bank), so that a commit gives the same digest on every machine.
func rootfs(binary []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	type file struct {
		path string
		mode int64
		data []byte
	}
	files := []file{
		{"app", 0o755, binary},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n")},
	}
	for _, dir := range []string{"etc/", "home/", "home/nonroot/", "tmp/"} {
		mode := int64(0o755)
		if dir == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: mode, ModTime: mtime, Format: tar.FormatPAX,
			Uid: ownerOf(dir), Gid: ownerOf(dir)}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.path, Mode: f.mode, Size: int64(len(f.data)), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ownerOf gives the non-root user its home folder; everything else is root's.
func ownerOf(dir string) int {
	if dir == "home/nonroot/" {
		return 65532
	}
	return 0
}

// writeLayout writes img as the only image of a fresh OCI layout in dir, named by ref, and
// returns its digest.
func writeLayout(dir string, img v1.Image, ref name.Tag) (v1.Hash, error) {
	if err := os.RemoveAll(dir); err != nil {
		return v1.Hash{}, err
	}
	path, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := path.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref.String(),
	})); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}
