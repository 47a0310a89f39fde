// Command argolua runs Argo CD resource health scripts in gopher-lua the way Argo CD's
// application controller does (util/lua/lua.go of argoproj/argo-cd v3.5.1, unchanged on master
// 3.6.0 at 37ee0097): VM.runLua + VM.ExecuteHealthLua, re-implemented here against the same
// gopher-lua version (v1.1.2, as in Argo CD's go.mod) without importing Argo CD.
//
// Libraries, as Argo CD sets them up:
//   - an argocd-cm script (useOpenLibs unset, "restricted"): lua.NewState(SkipOpenLibs: true),
//     then only package (OpenPackage), base (OpenBase) and table (OpenTable), then Argo's "safe
//     os" OpenSafeOs, which calls RegisterModule(TabLibName, {time, date}) (util/lua/oslib_safe.go):
//     the *table* module's name, already loaded, so gopher-lua's RegisterModule returns it unchanged
//     and the call adds nothing. Hence no global `os`; only a preloaded module "os" = {time, date}
//     reached by `require("os")`. No string, math, io, coroutine, debug or channel library, and
//     no string methods (("x"):upper() fails).
//   - a built-in script or useOpenLibs: true ("open"): all gopher-lua libraries, then the same
//     four steps.
//
// Input (stdin, JSON): {"mode": "restricted"|"open", "runs": [{"script": "...", "obj": {...}}]}.
// Output (stdout, JSON): one {"status", "message"} or {"error"} per run, in order.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
)

type run struct {
	Script string         `json:"script"`
	Obj    map[string]any `json:"obj"`
}

type input struct {
	Mode string `json:"mode"`
	Runs []run  `json:"runs"`
}

type result struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Argo CD's health.HealthStatusCode values accepted by isValidHealthStatusCode.
var validStatus = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

// safeOsFuncs are gopher-lua's own os.time and os.date (the implementation Argo CD's safe os
// library was copied from), taken from a scratch state: the only two functions Argo exposes.
func safeOsFuncs() map[string]lua.LGFunction {
	scratch := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer scratch.Close()
	scratch.Push(scratch.NewFunction(lua.OpenOs))
	scratch.Push(lua.LString(lua.OsLibName))
	scratch.Call(1, 0)
	osTable := scratch.GetGlobal(lua.OsLibName).(*lua.LTable)
	funcs := map[string]lua.LGFunction{}
	for _, name := range []string{"time", "date"} {
		funcs[name] = osTable.RawGetString(name).(*lua.LFunction).GFunction
	}
	return funcs
}

func newState(openLibs bool, osFuncs map[string]lua.LGFunction) *lua.LState {
	l := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	openSafeOs := func(l *lua.LState) int {
		l.Push(l.RegisterModule(lua.TabLibName, osFuncs)) // sic: Argo passes the table module's name (a no-op)
		return 1
	}
	for _, pair := range []struct {
		n string
		f lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(pair.f), NRet: 0, Protect: true}, lua.LString(pair.n)); err != nil {
			panic(err)
		}
	}
	l.PreloadModule(lua.OsLibName, func(l *lua.LState) int {
		l.Push(l.SetFuncs(l.NewTable(), osFuncs))
		return 1
	})
	return l
}

// decodeValue turns a JSON-decoded value into a Lua value as Argo CD's decodeValue does.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}

func field(t *lua.LTable, name string) (string, error) {
	switch v := t.RawGetString(name).(type) {
	case *lua.LNilType:
		return "", nil
	case lua.LString:
		return string(v), nil
	default:
		return "", fmt.Errorf("hs.%s is a %s, not a string", name, v.Type())
	}
}

func execute(openLibs bool, osFuncs map[string]lua.LGFunction, r run) result {
	l := newState(openLibs, osFuncs)
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("actionParams", l.CreateTable(0, 0))
	l.SetGlobal("obj", decodeValue(l, r.Obj))
	fn, err := l.LoadString(r.Script)
	if err == nil {
		l.Push(fn)
		err = l.PCall(0, lua.MultRet, nil)
	}
	if err != nil {
		if apiErr, ok := err.(*lua.ApiError); ok && apiErr.Type == lua.ApiErrorRun {
			apiErr.StackTrace = ""
		}
		return result{Error: err.Error()}
	}
	ret := l.Get(-1)
	switch ret.Type() {
	case lua.LTNil:
		return result{}
	case lua.LTTable:
		t := ret.(*lua.LTable)
		status, err := field(t, "status")
		if err != nil {
			return result{Error: err.Error()}
		}
		message, err := field(t, "message")
		if err != nil {
			return result{Error: err.Error()}
		}
		if status == "" && message == "" {
			return result{}
		}
		if !validStatus[status] {
			return result{Status: "Unknown", Message: "Lua returned an invalid health status"}
		}
		return result{Status: status, Message: message}
	}
	return result{Error: fmt.Sprintf("expect table output from Lua script, not %s", ret.Type())}
}

func main() {
	var in input
	dec := json.NewDecoder(os.Stdin)
	if err := dec.Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "parse input:", err)
		os.Exit(2)
	}
	var openLibs bool
	switch in.Mode {
	case "restricted":
	case "open":
		openLibs = true
	default:
		fmt.Fprintf(os.Stderr, "mode must be restricted or open, not %q\n", in.Mode)
		os.Exit(2)
	}
	osFuncs := safeOsFuncs()
	out := make([]result, 0, len(in.Runs))
	for _, r := range in.Runs {
		out = append(out, execute(openLibs, osFuncs, r))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "write:", err)
		os.Exit(2)
	}
}
