//! The deployment agrees with the code: the state machine's placeholders, the template's
//! functions, the crates under `functions/`, the local engine's handlers, the API's routes, the
//! published schemas; and every policy statement names its resources.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use lector::local::{local_function_arn, local_substitutions};
use lector_pipeline::steps::STEPS;
use serde_json::{Map, Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A CloudFormation tag as the JSON form the tag stands for: `!Ref X` is `{"Ref": X}`,
/// `!GetAtt A.B` is `{"Fn::GetAtt": [A, B]}`, `!Sub s` is `{"Fn::Sub": s}`, and so on.
fn normalise(value: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(normalise).collect()),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    other => serde_norway::to_string(&other).unwrap_or_default().trim().to_owned(),
                };
                out.insert(key, normalise(v));
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let name = tagged.tag.to_string();
            let name = name.trim_start_matches('!');
            let inner = normalise(tagged.value);
            match name {
                "Ref" => json!({ "Ref": inner }),
                "GetAtt" => match inner {
                    Value::String(s) => {
                        let (resource, attribute) = s.split_once('.').unwrap_or((&s, ""));
                        json!({ "Fn::GetAtt": [resource, attribute] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                other => json!({ format!("Fn::{other}"): inner }),
            }
        }
    }
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml is readable");
    let yaml: serde_norway::Value = serde_norway::from_str(&text).expect("template.yaml is YAML");
    normalise(yaml)
}

fn resources(template: &Value) -> &Map<String, Value> {
    template["Resources"].as_object().expect("the template has Resources")
}

fn of_type<'a>(template: &'a Value, ty: &str) -> Vec<(&'a String, &'a Value)> {
    resources(template).iter().filter(|(_, r)| r["Type"] == ty).collect()
}

/// Every `${Name}` in a text.
fn placeholders(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        found.insert(after[..end].to_owned());
        rest = &after[end..];
    }
    found
}

fn state_machines() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("statemachines"))
        .expect("statemachines/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".asl.json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no statemachines/*.asl.json");
    files
}

/// The template's functions built by cargo-lambda: logical id → the crate folder's name.
fn built_functions(template: &Value) -> BTreeMap<String, String> {
    of_type(template, "AWS::Serverless::Function")
        .into_iter()
        .map(|(id, f)| {
            assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda", "{id} is not built by cargo-lambda");
            let code = f["Properties"]["CodeUri"].as_str().unwrap_or_else(|| panic!("{id} has no CodeUri"));
            let name = code
                .strip_prefix("functions/")
                .unwrap_or_else(|| panic!("{id}'s CodeUri is not functions/<name>"));
            assert_eq!(
                f["Metadata"]["BuildProperties"]["Binary"], name,
                "{id} builds the binary named after its folder"
            );
            (id.clone(), name.to_owned())
        })
        .collect()
}

/// Every Task state's `Resource`, Map item processors included.
fn task_resources(states: &Value, found: &mut Vec<(String, String)>) {
    let Some(states) = states.as_object() else { return };
    for (name, state) in states {
        if state["Type"] == "Task"
            && let Some(resource) = state["Resource"].as_str()
        {
            found.push((name.clone(), resource.to_owned()));
        }
        for nested in ["ItemProcessor", "Iterator"] {
            task_resources(&state[nested]["States"], found);
        }
        if let Some(branches) = state["Branches"].as_array() {
            for branch in branches {
                task_resources(&branch["States"], found);
            }
        }
    }
}

#[test]
fn every_placeholder_is_substituted_by_a_function_the_template_builds() {
    let template = template();
    let functions = built_functions(&template);
    let machines = of_type(&template, "AWS::Serverless::StateMachine");
    for file in state_machines() {
        let relative = file.strip_prefix(root()).unwrap().to_string_lossy().into_owned();
        let (id, machine) = machines
            .iter()
            .find(|(_, m)| m["Properties"]["DefinitionUri"] == relative.as_str())
            .unwrap_or_else(|| panic!("no state machine of the template runs {relative}"));
        let text = std::fs::read_to_string(&file).unwrap();
        let substitutions =
            machine["Properties"]["DefinitionSubstitutions"].as_object().cloned().unwrap_or_default();
        let used = placeholders(&text);
        let given: BTreeSet<String> = substitutions.keys().cloned().collect();
        assert_eq!(
            used, given,
            "{id}: the placeholders of {relative} and its DefinitionSubstitutions differ"
        );
        for (key, value) in &substitutions {
            let target = value["Fn::GetAtt"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{key} is not a function's Arn: {value}"));
            assert_eq!(value["Fn::GetAtt"][1], "Arn", "{key} must be {target}.Arn");
            let crate_name = functions
                .get(target)
                .unwrap_or_else(|| panic!("{key} names {target}, which the template does not build"));
            assert!(
                root().join("functions").join(crate_name).join("Cargo.toml").is_file(),
                "{target} has no crate functions/{crate_name}"
            );
            let step = STEPS
                .iter()
                .find(|(_, _, s)| s == key)
                .unwrap_or_else(|| panic!("{key} is not a step's substitution"));
            assert_eq!(step.1, crate_name, "{key} is step {}'s, whose function is {}", step.0, step.1);
        }
    }
}

#[test]
fn every_task_resolves_to_a_handler_of_the_local_engine() {
    let handlers: BTreeSet<String> =
        STEPS.iter().map(|(_, function, _)| local_function_arn(function)).collect();
    let substitutions = local_substitutions();
    for file in state_machines() {
        let definition: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let mut tasks = Vec::new();
        task_resources(&definition["States"], &mut tasks);
        assert!(!tasks.is_empty(), "{} has no Task state", file.display());
        for (state, resource) in tasks {
            let mut resolved = resource.clone();
            for (key, value) in &substitutions {
                resolved = resolved.replace(&format!("${{{key}}}"), value);
            }
            assert!(
                handlers.contains(&resolved),
                "{}: Task {state}'s {resource} has no local handler",
                file.display()
            );
            let step = STEPS
                .iter()
                .find(|(s, _, _)| *s == state)
                .unwrap_or_else(|| panic!("Task {state} is not a step"));
            assert_eq!(resource, format!("${{{}}}", step.2), "Task {state} runs its own step's function");
        }
    }
}

#[test]
fn the_template_builds_every_function_crate_and_no_other() {
    let template = template();
    let built: BTreeSet<String> = built_functions(&template).into_values().collect();
    let crates: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(built, crates, "functions/* and the template's functions differ");
    for name in &crates {
        let manifest =
            std::fs::read_to_string(root().join("functions").join(name).join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "functions/{name}'s package and binary are named {name}"
        );
        assert!(
            manifest.contains("build = \"../build.rs\""),
            "functions/{name} links position-dependent with the shared functions/build.rs"
        );
        let main = std::fs::read_to_string(root().join("functions").join(name).join("src/main.rs")).unwrap();
        let code_lines =
            main.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//")).count();
        assert!(code_lines <= 25, "functions/{name}/src/main.rs only wires ({code_lines} lines)");
    }
}

/// Actions AWS authorizes only on `*` (no resource-level permissions), each with why.
const RESOURCELESS: &[(&str, &str)] = &[
    ("xray:PutTraceSegments", "X-Ray has no resources"),
    ("xray:PutTelemetryRecords", "X-Ray has no resources"),
    ("xray:GetSamplingRules", "X-Ray has no resources"),
    ("xray:GetSamplingTargets", "X-Ray has no resources"),
    ("polly:SynthesizeSpeech", "only lexicons are Polly resources; Lector uses none"),
    ("polly:DescribeVoices", "a list action without resources"),
    ("dynamodb:ListStreams", "a list action without resources"),
    ("logs:CreateLogDelivery", "Step Functions' log delivery takes no resource"),
    ("logs:GetLogDelivery", "Step Functions' log delivery takes no resource"),
    ("logs:UpdateLogDelivery", "Step Functions' log delivery takes no resource"),
    ("logs:DeleteLogDelivery", "Step Functions' log delivery takes no resource"),
    ("logs:ListLogDeliveries", "Step Functions' log delivery takes no resource"),
    ("logs:PutResourcePolicy", "Step Functions' log delivery takes no resource"),
    ("logs:DescribeResourcePolicies", "Step Functions' log delivery takes no resource"),
    ("logs:DescribeLogGroups", "Step Functions' log delivery takes no resource"),
];

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

#[test]
fn every_allowed_data_plane_action_names_its_resources() {
    let template = template();
    let mut statements = Vec::new();
    for (id, resource) in resources(&template) {
        let properties = &resource["Properties"];
        let mut documents = Vec::new();
        for policy in as_list(&properties["Policies"]) {
            documents.push(policy["PolicyDocument"].clone());
        }
        documents.push(properties["PolicyDocument"].clone());
        for document in documents {
            for statement in as_list(&document["Statement"]) {
                statements.push((id.clone(), statement));
            }
        }
    }
    assert!(statements.len() > 30, "policy statements found: {}", statements.len());
    for (id, statement) in statements {
        if statement["Effect"] != "Allow" {
            continue;
        }
        let actions: Vec<String> =
            as_list(&statement["Action"]).iter().filter_map(|a| a.as_str().map(str::to_owned)).collect();
        assert!(
            statement["NotAction"].is_null() && statement["NotResource"].is_null(),
            "{id}: no Not* in allows"
        );
        for action in &actions {
            assert!(!action.contains('*'), "{id}: {action} allows a wildcard of actions");
        }
        let everything = as_list(&statement["Resource"]).iter().any(|r| r == "*");
        if everything {
            for action in &actions {
                assert!(
                    RESOURCELESS.iter().any(|(a, _)| a == action),
                    "{id}: {action} is allowed on '*'; name its resources"
                );
            }
            assert_eq!(as_list(&statement["Resource"]).len(), 1, "{id}: '*' stands alone");
        }
    }
}

#[test]
fn the_http_api_routes_are_the_routers_and_writes_take_the_authorizer() {
    let template = template();
    let r = resources(&template);
    let mut routes = BTreeMap::new();
    for (id, route) in of_type(&template, "AWS::ApiGatewayV2::Route") {
        let key = route["Properties"]["RouteKey"].as_str().unwrap_or_default().to_owned();
        routes.insert(key, (id.clone(), route["Properties"].clone()));
    }
    assert!(routes.remove("$default").is_some(), "unmatched requests reach the function's envelope");
    let expected: BTreeSet<String> =
        lector_api::ROUTES.iter().map(|(method, path, _, _)| format!("{method} {path}")).collect();
    assert_eq!(routes.keys().cloned().collect::<BTreeSet<_>>(), expected);
    // The binary whose alias a route's integration invokes.
    let binary_behind = |properties: &Value| -> String {
        let target = properties["Target"]["Fn::Sub"].as_str().unwrap_or_default();
        let integration = target.strip_prefix("integrations/${").and_then(|t| t.strip_suffix('}'));
        let integration = integration.unwrap_or_else(|| panic!("a route targets an integration: {target}"));
        let alias = r[integration]["Properties"]["IntegrationUri"]["Ref"].as_str().unwrap_or_default();
        let function =
            alias.strip_suffix(".Alias").unwrap_or_else(|| panic!("{integration} invokes a live alias"));
        r[function]["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap_or_default().to_owned()
    };
    for (method, path, writes, group) in lector_api::ROUTES {
        let (id, properties) = &routes[&format!("{method} {path}")];
        let binary = match group {
            lector_api::Endpoints::Conversions => "api",
            lector_api::Endpoints::Preview => "api-preview",
        };
        assert_eq!(binary_behind(properties), binary, "{id} is served by its group's function");
        if *writes {
            assert_eq!(properties["AuthorizationType"], json!({"Fn::If": ["HasJwt", "JWT", "NONE"]}), "{id}");
            assert_eq!(properties["AuthorizerId"]["Fn::If"][1], json!({"Ref": "JwtAuthorizer"}), "{id}");
        } else {
            assert!(properties["AuthorizationType"].is_null(), "{id} reads without a token");
        }
    }
}

/// The draft 4 form of a draft 2020-12 schema, as `scripts/template-schemas.py` writes it.
fn draft4(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(draft4).collect()),
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, v) in map {
                match key.as_str() {
                    "$schema" => {
                        out.insert(key.clone(), json!("http://json-schema.org/draft-04/schema#"));
                    }
                    "$id" => {
                        out.insert("id".into(), v.clone());
                    }
                    "$defs" => {
                        let defs =
                            v.as_object().map(|d| d.iter().map(|(k, d)| (k.clone(), draft4(d))).collect());
                        out.insert("definitions".into(), Value::Object(defs.unwrap_or_default()));
                    }
                    "$ref" if v.is_string() => {
                        out.insert(
                            key.clone(),
                            json!(v.as_str().unwrap_or_default().replace("#/$defs/", "#/definitions/")),
                        );
                    }
                    "const" => {
                        out.insert("enum".into(), json!([v]));
                    }
                    "properties" if v.is_object() => {
                        let props =
                            v.as_object().map(|p| p.iter().map(|(k, p)| (k.clone(), draft4(p))).collect());
                        out.insert(key.clone(), Value::Object(props.unwrap_or_default()));
                    }
                    _ => {
                        out.insert(key.clone(), draft4(v));
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn schema_files() -> Vec<(String, PathBuf)> {
    let mut files = vec![("lector@Envelope".to_owned(), root().join("schemas/envelope.v1.json"))];
    for entry in std::fs::read_dir(root().join("schemas/events")).unwrap().filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(event) = name.strip_suffix(".v1.json") {
            files.push((format!("lector@{event}"), entry.path()));
        }
    }
    files
}

#[test]
fn the_registry_holds_every_published_schema_as_it_is_in_schemas() {
    let template = template();
    let published: BTreeMap<String, Value> = of_type(&template, "AWS::EventSchemas::Schema")
        .into_iter()
        .map(|(_, s)| {
            let p = &s["Properties"];
            assert_eq!(p["Type"], "JSONSchemaDraft4");
            assert_eq!(p["RegistryName"], json!({"Fn::GetAtt": ["SchemaRegistry", "RegistryName"]}));
            let content: Value =
                serde_json::from_str(p["Content"].as_str().expect("Content is JSON text")).unwrap();
            (p["SchemaName"].as_str().unwrap_or_default().to_owned(), content)
        })
        .collect();
    let files = schema_files();
    assert_eq!(published.len(), files.len(), "one registry schema per file of schemas/");
    for (name, path) in files {
        let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            published.get(&name),
            Some(&draft4(&file)),
            "{name} in template.yaml differs from {}: run scripts/template-schemas.py",
            path.display()
        );
    }
}

#[test]
fn functions_log_json_to_their_own_group_with_retention_and_are_traced() {
    let template = template();
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Architectures"], json!(["arm64"]));
    assert_eq!(globals["Tracing"], "Active");
    for (id, function) in of_type(&template, "AWS::Serverless::Function") {
        let p = &function["Properties"];
        assert_eq!(p["LoggingConfig"]["LogFormat"], "JSON", "{id}");
        let group = p["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} names its log group"));
        let group = &resources(&template)[group];
        assert_eq!(group["Type"], "AWS::Logs::LogGroup");
        assert_eq!(group["Properties"]["RetentionInDays"], json!({"Ref": "LogRetentionDays"}), "{id}");
        assert!(p["MemorySize"].is_number() && p["Timeout"].is_number(), "{id} is sized");
        assert!(
            p["Role"]["Fn::GetAtt"][0].as_str().is_some_and(|r| r.ends_with("Role")),
            "{id} has its own role"
        );
    }
}

#[test]
fn stream_consumers_report_item_failures_bisect_and_give_up_into_a_queue() {
    let template = template();
    let mut consumers = 0;
    for (id, function) in of_type(&template, "AWS::Serverless::Function") {
        let Some(events) = function["Properties"]["Events"].as_object() else { continue };
        for event in events.values().filter(|e| e["Type"] == "DynamoDB") {
            consumers += 1;
            let p = &event["Properties"];
            assert_eq!(p["FunctionResponseTypes"], json!(["ReportBatchItemFailures"]), "{id}");
            assert_eq!(p["BisectBatchOnFunctionError"], true, "{id}");
            assert!(p["MaximumRetryAttempts"].as_u64().is_some_and(|n| n <= 10), "{id}: bounded retries");
            assert_eq!(p["DestinationConfig"]["OnFailure"]["Type"], "SQS", "{id}");
        }
    }
    assert_eq!(consumers, 2, "publish-events and project-conversions read the stream");
    // The projector is invoked only for the inserts of the two lists' streams.
    let projector = &resources(&template)["ProjectConversionsFunction"]["Properties"]["Events"]["Stream"];
    let filters = as_list(&projector["Properties"]["FilterCriteria"]["Filters"]);
    assert_eq!(filters.len(), 1, "one filter: {filters:?}");
    let pattern: Value =
        serde_json::from_str(filters[0]["Pattern"].as_str().expect("a JSON pattern")).unwrap();
    assert_eq!(pattern["eventName"], json!(["INSERT"]));
    assert_eq!(
        pattern["dynamodb"]["NewImage"]["stream_id"]["S"],
        json!([
            {"prefix": lector_core::StreamId::CONVERSION_PREFIX},
            {"prefix": lector_core::StreamId::FEED_PREFIX}
        ])
    );
}

/// The variables a function reads, in its template environment.
fn environment(template: &Value, function: &str) -> BTreeSet<String> {
    resources(template)[function]["Properties"]["Environment"]["Variables"]
        .as_object()
        .unwrap_or_else(|| panic!("{function} has an environment"))
        .keys()
        .cloned()
        .collect()
}

#[test]
fn subscriptions_are_polled_on_a_schedule_by_an_express_workflow() {
    use lector_aws::feed_index::{FEED_TABLE_VAR, INDEXES};
    use lector_aws::polls::POLL_STATE_MACHINE_VAR;

    let template = template();
    let r = resources(&template);
    // The feed table has the layout DynamoFeedIndex reads: each index with its keys, keys only.
    let table = &r["FeedTable"]["Properties"];
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(table["KeySchema"], json!([{"AttributeName": "feed_id", "KeyType": "HASH"}]));
    let indexes = as_list(&table["GlobalSecondaryIndexes"]);
    assert_eq!(indexes.len(), INDEXES.len());
    for (name, partition, sort) in INDEXES {
        let index =
            indexes.iter().find(|i| i["IndexName"] == name).unwrap_or_else(|| panic!("no index {name}"));
        assert_eq!(
            index["KeySchema"],
            json!([{"AttributeName": partition, "KeyType": "HASH"}, {"AttributeName": sort, "KeyType": "RANGE"}]),
            "{name}"
        );
        assert_eq!(index["Projection"]["ProjectionType"], "KEYS_ONLY", "{name}");
    }
    // The polling workflow is Express, logged, and started by the schedule alone.
    let machine = &r["PollFeedsStateMachine"]["Properties"];
    assert_eq!(machine["Type"], "EXPRESS");
    assert_eq!(machine["DefinitionUri"], "statemachines/poll-feeds.asl.json");
    assert!(
        machine["Logging"]["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
            .as_str()
            .is_some_and(|g| r[g]["Type"] == "AWS::Logs::LogGroup"),
        "the Express workflow logs to its own group"
    );
    let schedules = of_type(&template, "AWS::Scheduler::Schedule");
    assert_eq!(schedules.len(), 1);
    let target = &schedules[0].1["Properties"]["Target"];
    assert_eq!(target["Arn"], json!({"Ref": "PollFeedsStateMachine"}));
    assert_eq!(target["Input"], "{}", "a scheduled run polls the due feeds, none by id");
    let role = target["RoleArn"]["Fn::GetAtt"][0].as_str().expect("the schedule has a role");
    let statements = as_list(&r[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]);
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0]["Action"], json!(["states:StartExecution"]));
    assert_eq!(statements[0]["Resource"], json!([{"Ref": "PollFeedsStateMachine"}]));
    // PostDiscovered and PostChanged reach request-conversions, with a dead-letter queue.
    let rule = &r["RequestConversionsFunction"]["Properties"]["Events"]["Found"];
    assert_eq!(rule["Type"], "EventBridgeRule");
    assert_eq!(rule["Properties"]["Pattern"]["detail-type"], json!(["PostDiscovered", "PostChanged"]));
    let dlq = json!({"Fn::GetAtt": ["RequestConversionsDlq", "Arn"]});
    assert_eq!(rule["Properties"]["DeadLetterConfig"]["Arn"], dlq);
    assert_eq!(
        r["RequestConversionsFunction"]["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
            ["Destination"],
        dlq
    );
    // The functions that read the list of subscriptions or start polls are given them.
    for function in ["ListDueFeedsFunction", "ApiFunction", "ProjectConversionsFunction"] {
        assert!(environment(&template, function).contains(FEED_TABLE_VAR), "{function} has {FEED_TABLE_VAR}");
    }
    assert!(environment(&template, "ApiFunction").contains(POLL_STATE_MACHINE_VAR));
    // poll-feed and the API read the settings (the WebSub secret among them) and the public
    // address the hubs call back.
    for function in ["PollFeedFunction", "ApiFunction"] {
        let env = environment(&template, function);
        for var in ["LECTOR_SETTINGS_PATH", "LECTOR_PUBLIC_URL"] {
            assert!(env.contains(var), "{function} has {var}");
        }
    }
}

#[test]
fn the_data_bucket_expires_work_and_the_speech_cache_but_never_audio() {
    let template = template();
    let rules = as_list(&resources(&template)["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]);
    let expiring: BTreeMap<String, Value> = rules
        .iter()
        .filter(|r| r["Status"] == "Enabled" && !r["ExpirationInDays"].is_null())
        .map(|r| (r["Prefix"].as_str().unwrap_or_default().to_owned(), r["ExpirationInDays"].clone()))
        .collect();
    assert_eq!(expiring.get("work/"), Some(&json!({"Ref": "WorkObjectDays"})));
    assert_eq!(expiring.get("speech/"), Some(&json!({"Ref": "SpeechCacheDays"})));
    assert!(!expiring.contains_key("") && !expiring.keys().any(|p| p.starts_with("audio")), "{expiring:?}");
    // The unit cache's key is the one the steps write.
    let unit = lector_core::ObjectKey::speech_unit(&"ab".repeat(16)).expect("a unit key");
    assert!(unit.as_str().starts_with("speech/"), "{unit:?}");
}

#[test]
fn the_design_decisions_hold() {
    let template = template();
    let r = resources(&template);
    // The rule on ConversionRequested and ConversionRevisionRequested targets start-conversion
    // (an EventBridge target cannot name the execution).
    let rule = &r["StartConversionFunction"]["Properties"]["Events"]["Requested"];
    assert_eq!(rule["Type"], "EventBridgeRule");
    assert_eq!(rule["Properties"]["Pattern"]["detail-type"], json!(lector_pipeline::steps::STARTING_EVENTS));
    assert!(
        rule["Properties"]["DeadLetterConfig"].is_object() && rule["Properties"]["RetryPolicy"].is_object()
    );
    assert!(
        r["ConversionStateMachine"]["Properties"]["Events"].is_null(),
        "nothing starts the machine unnamed"
    );
    // The event log keeps its history.
    let table = &r["EventTable"]["Properties"];
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(table["StreamSpecification"]["StreamViewType"], "NEW_IMAGE");
    assert_eq!(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true);
    // Each API function's canary rolls back on its alarms.
    for function in ["ApiFunction", "ApiPreviewFunction"] {
        let api = &r[function]["Properties"];
        assert_eq!(api["AutoPublishAlias"], "live", "{function}");
        assert_eq!(api["DeploymentPreference"]["Type"], "Canary10Percent5Minutes", "{function}");
        assert!(as_list(&api["DeploymentPreference"]["Alarms"]).len() >= 2, "{function}");
    }
    assert!(Path::new(&root().join("samconfig.toml")).is_file());
}

/// The text of a markdown section: from its `## ` heading to the next `## ` heading.
fn section<'a>(markdown: &'a str, heading: &str) -> Option<&'a str> {
    let start = markdown.find(&format!("\n## {heading}\n"))? + 1;
    let body = &markdown[start..];
    let end = body[3..].find("\n## ").map_or(body.len(), |i| i + 3);
    Some(&body[..end])
}

#[test]
fn the_deploy_guide_names_every_parameter_and_every_alarm() {
    let template = template();
    let guide = std::fs::read_to_string(root().join("docs/DEPLOY.md")).expect("docs/DEPLOY.md is readable");
    let parameters: Vec<&String> =
        template["Parameters"].as_object().expect("the template has Parameters").keys().collect();
    assert!(!parameters.is_empty());
    let unnamed: Vec<_> = parameters.iter().filter(|p| !guide.contains(&format!("`{p}`"))).collect();
    assert!(unnamed.is_empty(), "docs/DEPLOY.md does not name these template parameters: {unnamed:?}");

    let alarms_section = section(&guide, "Alarms").expect("docs/DEPLOY.md has a `## Alarms` section");
    let alarms = of_type(&template, "AWS::CloudWatch::Alarm");
    assert!(!alarms.is_empty());
    let unnamed: Vec<_> =
        alarms.iter().map(|(id, _)| id).filter(|id| !alarms_section.contains(&format!("`{id}`"))).collect();
    assert!(unnamed.is_empty(), "the Alarms section of docs/DEPLOY.md does not explain: {unnamed:?}");
    // Nor does it explain an alarm the template no longer has.
    let stale: Vec<_> = alarms_section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| word.ends_with("Alarm") && word.chars().all(|c| c.is_ascii_alphanumeric()))
        .filter(|word| !alarms.iter().any(|(id, _)| id.as_str() == *word))
        .collect();
    assert!(stale.is_empty(), "docs/DEPLOY.md explains alarms template.yaml does not have: {stale:?}");
}
