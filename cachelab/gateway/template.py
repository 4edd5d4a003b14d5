"""Resolve one function of a SAM template the way `sam local` does, with SAM CLI's own providers.

`SamLocalStackProvider.get_stacks` applies parameter overrides and the SAM transform; `SamFunctionProvider` yields
the handler, runtime, timeout, memory, code directory and environment with intrinsics resolved; `ApiProvider`
yields the REST routes, stage and binary media types; `EnvironmentVariables` builds the Lambda runtime environment
(AWS_* variables, then template values, overridden by the gateway's own environment for the names the caller passes:
the gateway knows no function's configuration by itself).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from samcli.commands._utils.template import get_template_data
from samcli.lib.build.app_builder import ApplicationBuilder
from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
from samcli.local.lambdafn.env_vars import EnvironmentVariables

from cachelab.gateway.spec import FunctionSpec, Route, TemplateError

# AWS SDK settings passed through from the gateway's environment (credentials feed EnvironmentVariables).
_AWS_PASSTHROUGH = re.compile(r"^AWS_ENDPOINT_URL(_[A-Z0-9_]+)?$")

DEFAULT_TIMEOUT_S = 3  # Lambda's defaults when the template says nothing
DEFAULT_MEMORY_MB = 128
DEFAULT_STAGE = "Prod"  # SAM's implicit API stage


def load_function(
    template: Path,
    *,
    function: str | None = None,
    params: Mapping[str, str] | None = None,
    shell_env: Mapping[str, str] | None = None,
    pass_env: Sequence[str] = (),
) -> FunctionSpec:
    """Resolve `function` (default: the only function with REST API events) of `template`.

    Each name of `pass_env` set in `shell_env` (default: this process's environment) overrides the function's
    variable of that name, or adds it, as `sam local` lets its shell override the template's variables.
    """
    shell = os.environ if shell_env is None else shell_env
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # SAM CLI's own, about its dependencies
        return _load(template, function, dict(params or {}), shell, tuple(dict.fromkeys(pass_env)))


def read_template(template: Path) -> dict[str, Any]:
    """The template as SAM CLI reads it (YAML with the CloudFormation tags); TemplateError when it cannot."""
    if not template.is_file():
        raise TemplateError(f"template {template} not found (pass --template PATH)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            data = get_template_data(str(template))
    except Exception as exc:  # SAM CLI raises many types for a broken template; the message is what matters
        raise TemplateError(f"cannot read template {template}: {exc}") from exc
    if not isinstance(data, dict):
        raise TemplateError(f"cannot read template {template}: not a mapping")
    return data


def _load(
    template: Path, function: str | None, params: dict[str, str], shell_env: Mapping[str, str], pass_env: Sequence[str]
) -> FunctionSpec:
    declared: dict[str, Any] = dict(read_template(template).get("Parameters") or {})
    template = template.resolve()  # SAM CLI then resolves CodeUri against the template's own directory
    overrides = _parameter_values(declared, params)
    try:
        stacks, _remote = SamLocalStackProvider.get_stacks(str(template), parameter_overrides=overrides)
    except Exception as exc:
        raise TemplateError(f"cannot read template {template}: {exc}") from exc
    root = stacks[0]
    try:
        functions = SamFunctionProvider(stacks, ignore_code_extraction_warnings=True)
        api = ApiProvider(stacks)
    except Exception as exc:
        raise TemplateError(f"cannot resolve template {template}: {exc}") from exc

    routes_by_function: dict[str, list[Any]] = {}
    for route in api.routes:
        routes_by_function.setdefault(route.function_name, []).append(route)

    if function is None:
        candidates = sorted(name for name, routes in routes_by_function.items() if _rest_routes(routes))
        if len(candidates) != 1:
            raise TemplateError(
                f"template {template} has {len(candidates)} functions with REST API events "
                f"({', '.join(candidates) or 'none'}); choose one with --function"
            )
        function = candidates[0]
    fn = functions.get(function)
    if fn is None:
        names = sorted(f.name for f in functions.get_all())
        raise TemplateError(f"function {function!r} is not in {template} (functions: {', '.join(names) or 'none'})")
    if fn.packagetype != "Zip":
        raise TemplateError(f"function {function} is a {fn.packagetype} function; only Zip functions run locally")
    runtime = fn.runtime or ""
    if not runtime.startswith("python"):
        raise TemplateError(f"function {function} has runtime {runtime or 'none'}; the gateway runs Python only")
    if not fn.handler:
        raise TemplateError(f"function {function} has no Handler")
    if not fn.codeuri or not isinstance(fn.codeuri, str):
        raise TemplateError(f"function {function} has no local CodeUri")
    code_dir = Path(fn.codeuri).resolve()
    if not code_dir.is_dir():
        raise TemplateError(f"function {function}: CodeUri {code_dir} is not a directory")
    task_root = _task_root(function, fn.handler, code_dir, fn.metadata or {})

    rest = _rest_routes(routes_by_function.get(fn.full_path, []) or routes_by_function.get(fn.name, []))
    if not rest:
        raise TemplateError(f"function {function} has no REST API (Type: Api) events to serve")
    routes = tuple(sorted((Route.build(r.path, r.methods) for r in rest), key=lambda r: r.specificity, reverse=True))

    timeout_s = float(fn.timeout or DEFAULT_TIMEOUT_S)
    memory_mb = int(fn.memory or DEFAULT_MEMORY_MB)
    variables: dict[str, Any] = dict((fn.environment or {}).get("Variables") or {})
    overridden = tuple(name for name in pass_env if name in shell_env)
    for name in overridden:
        variables.setdefault(name, None)
    aws_creds = {
        key: shell_env[var]
        for key, var in (
            ("region", "AWS_REGION"),
            ("key", "AWS_ACCESS_KEY_ID"),
            ("secret", "AWS_SECRET_ACCESS_KEY"),
            ("sessiontoken", "AWS_SESSION_TOKEN"),
        )
        if shell_env.get(var)
    }
    if "region" not in aws_creds and shell_env.get("AWS_DEFAULT_REGION"):
        aws_creds["region"] = shell_env["AWS_DEFAULT_REGION"]
    resolved = EnvironmentVariables(
        function_name=fn.functionname,
        function_memory=memory_mb,
        function_timeout=int(timeout_s),
        function_handler=fn.handler,
        function_logging_config=fn.logging_config,
        variables=variables,
        shell_env_values={name: shell_env[name] for name in overridden},
        aws_creds=aws_creds,
    ).resolve()
    environment: dict[str, str] = {str(k): str(v) for k, v in resolved.items()}
    if not (fn.logging_config or {}).get("LogGroup"):
        environment["AWS_LAMBDA_LOG_GROUP_NAME"] = f"/aws/lambda/{fn.functionname}"  # SAM CLI drops the '/'
    environment.update({k: v for k, v in shell_env.items() if _AWS_PASSTHROUGH.match(k)})

    return FunctionSpec(
        template=template,
        logical_id=fn.name,
        function_name=fn.functionname,
        handler=fn.handler,
        runtime=runtime,
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        code_dir=code_dir,
        task_root=task_root,
        environment=environment,
        routes=routes,
        binary_media_types=tuple(api.api.binary_media_types or ()),
        stage=api.api.stage_name or DEFAULT_STAGE,
        reserved_concurrency=_reserved_concurrency(root.resources.get(fn.name, {})),
        parameters=params,
        overridden_from_env=overridden,
    )


def _parameter_values(declared: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, str]:
    """Every parameter's value as a string, as CloudFormation passes them: the defaults, then `params`.

    Checks `params` against the declarations (name, Type Number, AllowedValues, AllowedPattern, MinValue,
    MaxValue, MinLength, MaxLength) as CloudFormation would at deploy time. Passing the defaults explicitly also
    works around SAM CLI leaving `!Ref` to a parameter with a non-integer Number default unresolved.
    """
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise TemplateError(
            f"unknown template parameter(s) {', '.join(unknown)}; the template declares: "
            f"{', '.join(sorted(declared)) or 'none'}"
        )
    values = {
        name: _cfn_string(decl["Default"])
        for name, decl in declared.items()
        if isinstance(decl, Mapping) and isinstance(decl.get("Default"), str | int | float | bool)
    }
    for name, value in params.items():
        decl = declared[name] if isinstance(declared[name], Mapping) else {}
        problem = _parameter_problem(decl, value)
        if problem is not None:
            raise TemplateError(f"--param {name}={value}: {problem}")
        values[name] = value
    return values


def _cfn_string(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parameter_problem(decl: Mapping[str, Any], value: str) -> str | None:
    allowed = decl.get("AllowedValues")
    if isinstance(allowed, list) and value not in [_cfn_string(v) for v in allowed]:
        return f"must be one of {', '.join(_cfn_string(v) for v in allowed)}"
    pattern = decl.get("AllowedPattern")
    if isinstance(pattern, str):
        try:
            matches = re.fullmatch(pattern, value) is not None
        except re.error:
            matches = True  # a pattern Python cannot read is CloudFormation's business
        if not matches:
            return f"must match {pattern}"
    if decl.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return "must be a number"
        low, high = decl.get("MinValue"), decl.get("MaxValue")
        if isinstance(low, int | float) and number < low:
            return f"must be at least {low}"
        if isinstance(high, int | float) and number > high:
            return f"must be at most {high}"
    low_len, high_len = decl.get("MinLength"), decl.get("MaxLength")
    if isinstance(low_len, int) and len(value) < low_len:
        return f"must be at least {low_len} characters long"
    if isinstance(high_len, int) and len(value) > high_len:
        return f"must be at most {high_len} characters long"
    return None


def _task_root(function: str, handler: str, code_dir: Path, metadata: Mapping[str, Any]) -> Path:
    """The directory that plays LAMBDA_TASK_ROOT: CodeUri, or its ancestor when `sam build` nests the code.

    With `Metadata: BuildProperties: ParentPackageMode: explicit|auto`, `sam build` moves the CodeUri contents into
    `<artifact>/<parent/packages>/`, so the handler imports them as a package (`proxy.handler`). Running in place,
    the same layout is the CodeUri's ancestor, provided the CodeUri's last directory names are those packages.
    """
    build = metadata.get("BuildProperties") or {}
    mode = build.get("ParentPackageMode") if isinstance(build, Mapping) else None
    if mode not in ("explicit", "auto"):
        return code_dir
    packages = (
        build.get("ParentPackages")
        if mode == "explicit"
        else ApplicationBuilder._infer_parent_python_packages(handler, str(code_dir))
    )
    if not isinstance(packages, str) or not packages:
        return code_dir
    parts = packages.split(".")
    if list(code_dir.parts[-len(parts) :]) != parts:
        raise TemplateError(
            f"function {function}: ParentPackages {packages!r} must name the last directories of CodeUri "
            f"{code_dir} for the code to run in place"
        )
    return code_dir.parents[len(parts) - 1]


def _rest_routes(routes: Sequence[Any]) -> list[Any]:
    return [r for r in routes if r.event_type == "Api"]


def _reserved_concurrency(resource: Mapping[str, Any]) -> int | None:
    value = (resource.get("Properties") or {}).get("ReservedConcurrentExecutions")
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
