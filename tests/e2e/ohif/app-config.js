/** @type {AppTypes.Config} */
// OHIF served at the root of its own origin, reading DICOMweb from the same origin's
// /dicom-web/ (a share Orthanc, or the anonymizer for anonymized shares). Served by
// tests/e2e/test_ohif.py in place of the package's demo configuration.
window.config = {
  routerBasename: '/',
  // A share opens its studies only: no study list, which a share token cannot read.
  showStudyList: false,
  extensions: [],
  modes: [],
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  investigationalUseDialog: { option: 'never' },
  defaultDataSourceName: 'orthanc',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'orthanc',
      configuration: {
        friendlyName: 'Orthanc',
        name: 'orthanc',
        qidoRoot: window.location.origin + '/dicom-web',
        wadoRoot: window.location.origin + '/dicom-web',
        wadoUriRoot: window.location.origin + '/dicom-web',
        qidoSupportsIncludeField: false,
        // Frames and thumbnails through WADO-RS frames, which the anonymizer streams;
        // `thumbnail`/`rendered` would add an `accept` query argument it refuses.
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: false,
        supportsWildcard: true,
        dicomUploadEnabled: false,
        omitQuotationForMultipartRequest: true,
        bulkDataURI: { enabled: true },
      },
    },
  ],
};
