//! Making the derived CRD schemas equal to upstream's.
//!
//! kube-derive builds the OpenAPI schema from the Rust types with schemars. Upstream's CRDs come
//! from controller-gen, and the two disagree on a few conventions. [`conform_to_upstream`] turns
//! the derived schema into upstream's shape in one pass:
//!
//! * **Nullability.** schemars marks every `Option` field `nullable: true`. controller-gen marks a
//!   field nullable only where asked to (`+nullable`), which upstream does only for the times of
//!   the checkpoint. Optionality is expressed by leaving a field out of `required`, so `nullable`
//!   is removed everywhere except the listed paths.
//! * **Quantities.** k8s-openapi describes `Quantity` as just `x-kubernetes-int-or-string: true`,
//!   and kube adds `nullable`. controller-gen writes `anyOf: [{type: integer}, {type: string}]`
//!   plus the quantity `pattern`. Every int-or-string schema here is a quantity (the API has no
//!   `IntOrString` field), so all of them get upstream's form.
//! * **Root properties.** kube leaves `apiVersion`, `kind` and `metadata` out of the schema (the
//!   API server checks them anyway); upstream lists them, so they are added back.
//! * **Titles.** schemars adds a `title` to the root; controller-gen does not.
//!
//! The other schema functions here are `schema_with` helpers for the few fields whose derived
//! schema has a `format` or shape that upstream's does not.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use schemars::{Schema, SchemaGenerator, json_schema};

/// The pattern controller-gen gives every `resource.Quantity`.
pub const QUANTITY_PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// The properties of the checkpoint's schema that are `nullable` upstream (dotted paths below the
/// root). These are exactly the fields the checkpoint types write as `null` when unset.
pub const CHECKPOINT_NULLABLE: [&str; 5] = [
    "status.lastUpdateTime",
    "status.firstSampleStart",
    "status.lastSampleStart",
    "status.cpuHistogram.referenceTimestamp",
    "status.memoryHistogram.referenceTimestamp",
];

/// Rewrites a derived root schema into upstream's conventions (see the module docs). `nullable`
/// lists the dotted property paths that keep `nullable: true`.
pub fn conform_to_upstream(root: &mut JSONSchemaProps, nullable: &[&str]) {
    root.title = None;
    walk(root, &mut |schema| {
        schema.nullable = None;
        if schema.x_kubernetes_int_or_string == Some(true) {
            make_quantity(schema);
        }
        // The values of a ResourceList carry k8s-openapi's long text about quantities; the map
        // itself is described by its field, so the values need no description of their own.
        if let Some(JSONSchemaPropsOrBool::Schema(values)) = &mut schema.additional_properties
            && values.x_kubernetes_int_or_string == Some(true)
        {
            values.description = None;
        }
    });
    for path in nullable {
        if let Some(schema) = property_mut(root, path) {
            schema.nullable = Some(true);
        }
    }
    add_type_meta_properties(root);
}

/// Gives `schema` controller-gen's form of a `resource.Quantity`, keeping its description.
fn make_quantity(schema: &mut JSONSchemaProps) {
    let description = schema.description.take();
    *schema = JSONSchemaProps {
        any_of: Some(vec![
            JSONSchemaProps {
                type_: Some("integer".into()),
                ..JSONSchemaProps::default()
            },
            JSONSchemaProps {
                type_: Some("string".into()),
                ..JSONSchemaProps::default()
            },
        ]),
        description,
        pattern: Some(QUANTITY_PATTERN.into()),
        x_kubernetes_int_or_string: Some(true),
        ..JSONSchemaProps::default()
    };
}

/// Adds `apiVersion`, `kind` and `metadata` to the root's properties, as controller-gen does.
fn add_type_meta_properties(root: &mut JSONSchemaProps) {
    let properties = root.properties.get_or_insert_with(BTreeMap::new);
    properties.insert(
        "apiVersion".into(),
        JSONSchemaProps {
            description: Some(
                "The versioned schema this object is written in. The API server converts known \
                 versions to the latest one and may reject unknown ones. See \
                 https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
                    .into(),
            ),
            type_: Some("string".into()),
            ..JSONSchemaProps::default()
        },
    );
    properties.insert(
        "kind".into(),
        JSONSchemaProps {
            description: Some(
                "The REST resource this object represents, in CamelCase. The server may infer it \
                 from the endpoint the request is sent to; it cannot be updated. See \
                 https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
                    .into(),
            ),
            type_: Some("string".into()),
            ..JSONSchemaProps::default()
        },
    );
    properties.insert(
        "metadata".into(),
        JSONSchemaProps {
            type_: Some("object".into()),
            ..JSONSchemaProps::default()
        },
    );
}

/// The schema of the property at a dotted path below `root`, if it exists.
fn property_mut<'a>(root: &'a mut JSONSchemaProps, path: &str) -> Option<&'a mut JSONSchemaProps> {
    path.split('.').try_fold(root, |schema, name| {
        schema.properties.as_mut()?.get_mut(name)
    })
}

/// Calls `visit` on `schema` and on every schema nested in it.
fn walk(schema: &mut JSONSchemaProps, visit: &mut dyn FnMut(&mut JSONSchemaProps)) {
    visit(schema);
    for child in schema.properties.iter_mut().flat_map(BTreeMap::values_mut) {
        walk(child, visit);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(child)) = &mut schema.additional_properties {
        walk(child, visit);
    }
    match &mut schema.items {
        Some(JSONSchemaPropsOrArray::Schema(child)) => walk(child, visit),
        Some(JSONSchemaPropsOrArray::Schemas(children)) => {
            for child in children {
                walk(child, visit);
            }
        }
        None => {}
    }
    for children in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of] {
        for child in children.iter_mut().flatten() {
            walk(child, visit);
        }
    }
}

/// `schema_with` for an integer that Go declares as plain `int`: no `format`.
pub fn integer(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer" })
}

/// `schema_with` for a float64 field: `type: number` without a `format`, as controller-gen.
pub fn number(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "number" })
}

/// `schema_with` for a map whose keys the API server cannot describe (the checkpoint's bucket
/// weights, keyed by integer): an object that keeps whatever fields it is given.
pub fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

/// `transform` for the enum types: drops the type's own description. An optional field of an
/// enum type would otherwise be described by the enum rather than by the field (kube's
/// `OptionalEnum` transform copies the enum's keys over the field's).
pub fn without_description(schema: &mut Schema) {
    schema.remove("description");
}
